from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def home(request):
    return render(request, "home.html")


def page_not_found(request, exception):
    return render(request, "errors/404.html", status=404)


def server_error(request):
    # No context processors that might touch the database: it may be what failed.
    from django.http import HttpResponseServerError
    from django.template import loader

    return HttpResponseServerError(loader.get_template("errors/500.html").render())
