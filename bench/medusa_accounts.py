"""Synthetic Medusa v2 accounts for the import benchmark (bench/medusa-import.sh).

Writes three tab-separated files for psql's \\copy into Medusa's own tables (as the dump in
crates/auth-server/tests/fixtures/ creates them): auth_identity, provider_identity and customer.
Every account has its own salt and a real scrypt-kdf hash of the password `bench-<n>` at a low
logN (the format Medusa writes: `scrypt`, version 0, logN, r, p, salt, checksum, HMAC; base64),
so a sample of them can log in after the import. Every fifth account has no customer yet.

usage: python3 bench/medusa_accounts.py COUNT LOG_N OUT_DIR
"""

import base64
import hashlib
import hmac
import json
import os
import sys

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_like(n: int, prefix: str) -> str:
    """A 26-character id in Crockford base32, unique per n (not time-ordered: fine for a bench)."""
    digits = []
    value = n
    for _ in range(26):
        digits.append(CROCKFORD[value % 32])
        value //= 32
    return prefix + "".join(reversed(digits))


def scrypt_kdf(password: bytes, log_n: int, r: int = 8, p: int = 1) -> str:
    salt = os.urandom(32)
    header = b"scrypt" + bytes([0, log_n]) + r.to_bytes(4, "big") + p.to_bytes(4, "big") + salt
    checksum = hashlib.sha256(header).digest()[:16]
    dk = hashlib.scrypt(password, salt=salt, n=1 << log_n, r=r, p=p, dklen=64)
    mac = hmac.new(dk[32:], header + checksum, hashlib.sha256).digest()
    return base64.b64encode(header + checksum + mac).decode()


def main() -> None:
    count, log_n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    created = "2026-12-01 10:00:00.000+00"
    with open(os.path.join(out, "auth_identity.tsv"), "w") as ai, open(
        os.path.join(out, "provider_identity.tsv"), "w"
    ) as pi, open(os.path.join(out, "customer.tsv"), "w") as cu:
        for n in range(count):
            identity = ulid_like(n, "authid_")
            email = f"bench-{n}@example.com"
            if n % 5 == 4:
                app = "\\N"
            else:
                customer = ulid_like(n, "cus_")
                app = json.dumps({"customer_id": customer})
                cu.write(f"{customer}\t\\N\tCustomer\t{n}\t{email}\t\\N\tt\t\\N\t{created}\t{created}\t\\N\t\\N\n")
            ai.write(f"{identity}\t{app}\t{created}\t{created}\t\\N\n")
            metadata = json.dumps({"password": scrypt_kdf(f"bench-{n}".encode(), log_n)})
            pi.write(f"{ulid_like(n, '')}\t{email}\temailpass\t{identity}\t\\N\t{metadata}\t{created}\t{created}\t\\N\n")


if __name__ == "__main__":
    main()
