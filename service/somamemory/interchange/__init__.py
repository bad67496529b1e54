"""The export file format (JSON Lines) and its batched reading and writing, shared by the
``somamemory export|import`` commands (``transfer/``) and the HTTP ``/export`` and ``/import``."""
