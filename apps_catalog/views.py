from django.contrib.auth.decorators import login_required
from django.shortcuts import render


def explore(request):
    return render(request, "placeholder.html", {"title": "Explore apps"})


@login_required
def my_apps(request):
    return render(request, "placeholder.html", {"title": "My apps"})
