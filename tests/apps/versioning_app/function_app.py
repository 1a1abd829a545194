"""Release 1 of the versioning test app: host.json defaultVersion 1.0."""

import azure.functions as func
from versioned import register

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
register(app, release=1)
