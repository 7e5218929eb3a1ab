"""The service layer: sessions and their access rule, download holds, reader pools, cleanup,
audit, tokens. The one place that uses the database; adapters (api, cli, web) call it, and it
calls the pure reading core (:mod:`filerestore.restore`) and the catalog."""

from filerestore.service.checkout import Checkout, Download
from filerestore.service.principal import Principal
from filerestore.service.session import Session
from filerestore.service.sessions import SessionManager

__all__ = ["Checkout", "Download", "Principal", "Session", "SessionManager"]
