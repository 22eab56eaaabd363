from django.shortcuts import render


def search(request):
    return render(request, "placeholder.html", {"title": "Keyword research"})
