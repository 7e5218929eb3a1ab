"""The shared list of hostile ``path`` values: each is a raw query-string value, sent
byte for byte (percent escapes included) so no client library normalises it first.

Every route that takes a path must answer each of these with 400 or resolve it inside the
guest filesystem (200 with guest data, or 404); none may ever read a host file. ``{canary}``
is replaced by the absolute host path of a canary file the tests plant.
"""

from __future__ import annotations

HOSTILE_PATHS: tuple[str, ...] = (
    # plain climbing
    "..",
    "../..",
    "../../../../etc/passwd",
    "/../../../../etc/passwd",
    "/docs/../../../etc/passwd",
    "/link-to-dir/../../../etc/passwd",
    "/./../.././etc/passwd",
    # percent-encoded dots and slashes (decoded once: they are real dots, still contained)
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%2E%2E/%2E%2E/etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    # double and triple encoding (decoded once: literal "%2e" names)
    "%252e%252e%252fetc%252fpasswd",
    "%25252e%25252e%25252fetc",
    "..%252f..%252fetc%252fpasswd",
    # overlong UTF-8 forms of "." and "/" (refused)
    "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "%c0%ae%c0%ae%c0%afetc%c0%afpasswd",
    "%c1%9c..%c1%9cetc",
    "%e0%80%ae%e0%80%ae/etc/passwd",
    "%f0%80%80%ae%f0%80%80%ae/etc",
    # look-alike dots and slashes
    "%ef%bc%8e%ef%bc%8e/%ef%bc%8e%ef%bc%8e/etc/passwd",  # full-width full stop U+FF0E
    "%e2%80%a4%e2%80%a4/etc/passwd",  # one-dot leader U+2024
    "..%e2%88%95..%e2%88%95etc",  # division slash U+2215
    "..%ef%bc%8fetc%ef%bc%8fpasswd",  # full-width solidus U+FF0F
    # backslashes (a name character in a Linux guest)
    "..%5c..%5cetc%5cpasswd",
    "..\\..\\etc\\passwd",
    "%5c%5cserver%5cshare%5cfile",
    "C:%5cWindows%5cwin.ini",
    "/hostile/..%5c..%5cevil.txt",
    # NUL bytes (refused)
    "%00",
    "/etc/passwd%00.txt",
    "/hello.txt%00",
    "/docs%00/../..",
    # absolute host paths, schemes, home directories
    "/etc/passwd",
    "//etc/passwd",
    "///etc//passwd",
    "/proc/self/environ",
    "/proc/self/cwd/pyproject.toml",
    "file:///etc/passwd",
    "~/.ssh/id_rsa",
    "~root/.bashrc",
    "{canary}",
    "../../../../../../..{canary}",
    "/%2e%2e/%2e%2e/%2e%2e{canary}",
    # trailing slashes and dots
    "/docs/",
    "/docs//",
    "/docs/./sub/../",
    "/hello.txt/",
    "/hello.txt/.",
    "/docs/sub/nested.txt/..",
    # symlinks inside the image pointing out
    "/link-etc-passwd",
    "/docs/link-escape",
    "/docs/link-escape/../shadow",
    "/link-absolute",
    "/loop-a",
    "/link-dangling",
    # sizes and broken escapes
    "A" * 5000,
    "/" + "a" * 2000,
    "/" + "/".join(["d"] * 1500),
    "%ff%fe%fd",
    "%",
    "%zz",
    "%2",
    "%%32%65%%32%65",
)

assert len(HOSTILE_PATHS) >= 40
