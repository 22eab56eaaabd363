from django.contrib.auth.decorators import login_required
from django.shortcuts import render


def pricing(request):
    return render(request, "placeholder.html", {"title": "Pricing"})


@login_required
def billing(request):
    return render(request, "placeholder.html", {"title": "Billing"})
