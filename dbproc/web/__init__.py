"""The dashboard (``dbproc serve``): server-rendered pages and a JSON API over the
archive. Needs the ``web`` extra (``pip install 'dbproc[web]'``); importing
``dbproc.web`` itself loads none of it."""
