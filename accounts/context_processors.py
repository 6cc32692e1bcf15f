def roles(request):
    user = getattr(request, "user", None)
    return {"is_supervisor_or_admin": bool(user and user.is_authenticated and user.is_supervisor_or_admin)}
