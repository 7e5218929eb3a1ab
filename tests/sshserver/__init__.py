"""A real OpenSSH server (Debian's ``sshd``) on loopback for the SFTP restore tests and
benchmarks: its own host key, an unprivileged account, and a client key per run."""
