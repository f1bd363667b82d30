#!/usr/bin/env python3
"""Deterministic TLD-like zone for signing benchmarks.

usage: gen-zone.py N_DELEGATIONS [ORIGIN] > zone

N delegations (about 10% with in-bailiwick name servers and A/AAAA glue,
about 30% with a DS RRset), plus about N/5 names of authoritative data
(A, AAAA, TXT, MX), some below empty non-terminals, some wildcards.
The same N gives the same bytes.
"""
import random
import sys


def main():
    n = int(sys.argv[1])
    origin = sys.argv[2] if len(sys.argv) > 2 else "bench."
    rnd = random.Random(20261125)
    out = sys.stdout
    w = out.write
    w(f"$ORIGIN {origin}\n$TTL 3600\n")
    w("@ 86400 IN SOA ns1 hostmaster 2026010101 1800 900 604800 3600\n")
    w("@ 86400 IN NS ns1\n@ 86400 IN NS ns2\n@ IN MX 10 mail\n@ IN TXT \"v=spf1 -all\"\n")
    w("ns1 IN A 192.0.2.1\nns1 IN AAAA 2001:db8::1\nns2 IN A 198.51.100.1\nmail IN A 192.0.2.25\n")
    for i in range(n):
        if rnd.random() < 0.10:
            w(f"d{i} IN NS ns1.d{i}\nd{i} IN NS ns2.d{i}\n")
            w(f"ns1.d{i} IN A 192.0.2.{rnd.randrange(1, 255)}\n")
            w(f"ns2.d{i} IN AAAA 2001:db8:{rnd.randrange(1, 65535):x}::53\n")
        else:
            h = rnd.randrange(10000)
            w(f"d{i} IN NS ns1.host{h}.example.\nd{i} IN NS ns2.host{h}.example.\n")
        if rnd.random() < 0.30:
            digest = "".join(rnd.choice("0123456789ABCDEF") for _ in range(64))
            w(f"d{i} IN DS {rnd.randrange(65536)} 13 2 {digest}\n")
        if i % 5 == 0:
            j = i // 5
            kind = j % 10
            if kind == 0:
                w(f"x.y.e{j} IN A 192.0.2.{j % 250 + 1}\n")
            elif kind == 1:
                w(f"*.w{j} IN TXT \"wildcard {j}\"\n")
            else:
                w(f"h{j} IN A 203.0.113.{j % 250 + 1}\n")
                if kind % 2 == 0:
                    w(f"h{j} IN AAAA 2001:db8:{j % 65535:x}::80\n")
                if kind % 3 == 0:
                    w(f"h{j} IN TXT \"host {j}\"\n")
                if kind == 5:
                    w(f"h{j} IN MX 10 mail\n")


if __name__ == "__main__":
    main()
