"""Creator accounts: registration, argon2 password hashes and JWT bearer tokens.

``schemas`` holds the request and response models, ``service`` the catalog access,
``security`` hashing and tokens, ``deps`` the FastAPI dependencies (``SessionDep``,
``CurrentUser``) and ``routes`` the HTTP endpoints, mounted by the upload service.
"""
