"""filerestore: file-level restore from QCOW2 VM disk backups, parsed in userspace."""

__version__ = "0.1.0"
