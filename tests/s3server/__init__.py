"""S3-compatible servers for the tests: processes of their own on loopback.

A client given no credentials asks the host's instance metadata service for some, at a
link-local address: the tests never reach off the machine, so that lookup is pointed at a
closed port on loopback (``AWS_METADATA_ENDPOINT``, read by the client and inherited by
every server process the tests start). Tests give credentials; this is the net under them.
"""

import os

os.environ.setdefault("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9")
