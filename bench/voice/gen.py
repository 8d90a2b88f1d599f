#!/usr/bin/env python3
"""The routing data of the routed-call benchmark, one source for both servers.

Usage: bench/voice/gen.py OUTDIR [--users N] [--calls N] [--gw1-port P] [--gw2-port P] [--gw-transport udp|tcp]

Writes into OUTDIR:
  confab.ps1           the confab shell script (Lync cmdlets): the Global dial plan's 50
                       normalization rules, the PSTN usage "Bench", the two gateways, the 200
                       voice routes, the Global voice policy's usage, Enterprise Voice and a
                       LineURI for each caller
  dbtext/dialplan      Kamailio's `dialplan` table (db_text): dpid 1 = the same 50 rules,
                       dpid 2 = the 200 routes (match only; attrs = the dispatcher set)
  dbtext/version       the db_text version table the dialplan module checks
  dispatcher.list      Kamailio's dispatcher set 1: the two gateways
  calls.csv            sipp injection file: caller;[authentication ...];dialled number
  expect.csv           dialled number;E.164 number;route (what both servers must do)

The data:
  * 50 normalization rules, Priority 0..49, first match wins: the cookbook's three
    (4-digit extension `^(\\d{4})$` -> `+1425555$1`, national `^1?(\\d{10})$` -> `+1$1`,
    international `^011(\\d*)$` -> `+$1`) and 47 others of distinct shapes (site codes,
    5-digit extensions of other sites, service numbers, an outside-line 9, 00-prefixed
    international, E.164 as typed, star codes) that match none of the numbers the three
    are for. The national rule is at Priority 48: a 10-digit number is tried against 48
    rules before it matches.
  * 200 voice routes, Priority 0..199, one PSTN usage "Bench", each to both gateways:
    40 international (`^\\+44\\d{10}$`, ...) first, then 160 North American area codes
    (`^\\+1206\\d{7}$`, ...). No two routes match the same number.
  * calls.csv dials 10-digit numbers spread evenly over the 160 area codes (never a
    caller's LineURI, so reverse number lookup finds no user).

The generator checks itself (with Python's `re`, which agrees with .NET and PCRE on these
patterns): the 47 other rules match none of the cookbook rules' numbers, every dialled
number normalises to the expected E.164 number and matches exactly one route.
"""
import argparse
import os
import random
import re
import sys

DOMAIN = "example.test"
USAGE = "Bench"
GATEWAYS = [("gw1.bench", 5091), ("gw2.bench", 5092)]

# (name, .NET pattern, .NET translation). Priority = place in this list.
COOKBOOK_EXT = ("Ext4Redmond", r"^(\d{4})$", "+1425555$1")
COOKBOOK_NATIONAL = ("National", r"^1?(\d{10})$", "+1$1")
COOKBOOK_INTL = ("International", r"^011(\d*)$", "+$1")

SITES = [  # site code (dialled 8NN + 4 digits) -> E.164 prefix of that site
    ("801", "+1206555"), ("802", "+1212555"), ("803", "+1312555"), ("804", "+1415555"),
    ("805", "+1512555"), ("806", "+1617555"), ("807", "+1702555"), ("808", "+1303555"),
    ("809", "+1404555"), ("810", "+1503555"), ("811", "+1602555"), ("812", "+1713555"),
    ("813", "+1214555"), ("814", "+1305555"), ("815", "+1615555"), ("816", "+442071234"),
    ("817", "+4930123"), ("818", "+33155512"), ("819", "+81355512"), ("820", "+61295551"),
]
EXT5 = [("2", "+1206556"), ("3", "+1212556"), ("5", "+1312556"), ("6", "+1415556"), ("7", "+1617556")]
COUNTRY_00 = [  # 00 + country code + national number of a fixed length (European dialling)
    ("44", 10), ("49", 11), ("33", 9), ("39", 10), ("34", 9), ("31", 9), ("41", 9),
    ("46", 9), ("47", 8), ("45", 8),
]


def other_rules():
    r = []
    for code, prefix in SITES:
        r.append((f"Site{code}", f"^{code}(\\d{{4}})$", f"{prefix}$1"))
    for lead, prefix in EXT5:
        r.append((f"Ext5Site{lead}", f"^{lead}(\\d{{4}})$", f"{prefix}$1"))
    r.append(("Emergency", r"^(911)$", "$1"))
    r.append(("EmergencyTest", r"^(933)$", "$1"))
    r.append(("Services", r"^([2-8]11)$", "$1"))
    r.append(("Operator", r"^(0)$", "$1"))
    r.append(("OutsideLineNational", r"^9(\d{10})$", "+1$1"))
    r.append(("OutsideLineLong", r"^91(\d{10})$", "+1$1"))
    r.append(("OutsideLineIntl", r"^9011(\d{7,15})$", "+$1"))
    r.append(("OutsideLineLocal", r"^9([2-9]\d{6})$", "+1425$1"))
    for cc, n in COUNTRY_00:
        r.append((f"Intl00Country{cc}", f"^00{cc}(\\d{{{n}}})$", f"+{cc}$1"))
    r.append(("Intl00", r"^00(\d{10,15})$", "+$1"))
    r.append(("AlreadyE164", r"^\+(\d{7,15})$", "+$1"))
    r.append(("StarCodes", r"^(\*\d{2})$", "$1"))
    r.append(("HashCodes", r"^#(\d{3})$", "#$1"))
    return r


def rules():
    others = other_rules()
    assert len(others) == 47, len(others)
    return [COOKBOOK_EXT] + others + [COOKBOOK_NATIONAL, COOKBOOK_INTL]


AREA_CODES = (
    "201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 229 231 "
    "234 239 240 248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 303 304 305 307 "
    "308 309 310 312 313 314 315 316 317 318 319 320 321 323 325 330 334 336 337 339 347 351 "
    "352 360 361 386 401 402 404 405 406 407 408 409 410 412 413 414 415 417 419 423 424 425 "
    "430 432 434 435 440 443 469 478 479 480 484 501 502 503 504 505 507 508 509 510 512 513 "
    "515 516 517 518 520 530 540 541 551 559 561 562 563 567 570 571 573 574 575 580 585 586 "
    "601 602 603 605 606 607 608 609 610 612 614 615 616 617 618 619 620 623 626 630 631 636 "
    "641 646 650 651 660 661"
).split()
COUNTRIES = [  # country code, digits after it
    ("44", "\\d{10}"), ("49", "\\d{6,13}"), ("33", "\\d{9}"), ("39", "\\d{6,11}"), ("34", "\\d{9}"),
    ("31", "\\d{9}"), ("32", "\\d{8,9}"), ("41", "\\d{9}"), ("43", "\\d{4,13}"), ("45", "\\d{8}"),
    ("46", "\\d{7,13}"), ("47", "\\d{8}"), ("48", "\\d{9}"), ("351", "\\d{9}"), ("353", "\\d{7,9}"),
    ("358", "\\d{5,12}"), ("30", "\\d{10}"), ("36", "\\d{8,9}"), ("420", "\\d{9}"), ("421", "\\d{9}"),
    ("81", "\\d{9,10}"), ("82", "\\d{8,10}"), ("86", "\\d{10,11}"), ("852", "\\d{8}"), ("61", "\\d{9}"),
    ("64", "\\d{8,10}"), ("65", "\\d{8}"), ("66", "\\d{8,9}"), ("91", "\\d{10}"), ("52", "\\d{10}"),
    ("55", "\\d{10,11}"), ("54", "\\d{10}"), ("56", "\\d{9}"), ("57", "\\d{10}"), ("27", "\\d{9}"),
    ("20", "\\d{9,10}"), ("971", "\\d{8,9}"), ("972", "\\d{8,9}"), ("90", "\\d{10}"), ("7", "\\d{10}"),
]


def routes():
    """(name, NumberPattern) in Priority order."""
    assert len(AREA_CODES) == 160 and len(set(AREA_CODES)) == 160, len(AREA_CODES)
    assert len(COUNTRIES) == 40
    r = [(f"Intl{cc}", f"^\\+{cc}{rest}$") for cc, rest in COUNTRIES]
    r += [(f"NANP{npa}", f"^\\+1{npa}\\d{{7}}$") for npa in AREA_CODES]
    return r


def dotnet_repl_to_python(t):
    """The translations here use only `$1` and literal text."""
    return t.replace("\\", "\\\\").replace("$1", "\\1")


def dotnet_repl_to_kamailio(t):
    """Kamailio's repl_exp: \\1 for a group; `$` starts a config variable, so none may be left."""
    out = t.replace("$1", "\\1")
    assert "$" not in out, t
    return out


def normalize(rs, number):
    for _name, pat, tr in rs:
        m = re.search(pat, number)
        if m:
            return re.sub(pat, dotnet_repl_to_python(tr), number, count=1), _name
    return number, None


def dbtext_escape(s):
    return (s.replace("\\", "\\\\").replace(":", "\\:").replace("\n", "\\n")
            .replace("\r", "\\r").replace("\t", "\\t"))


def ps_quote(s):
    return "'" + s.replace("'", "''") + "'"


def self_check(rs, rts, numbers):
    others = rs[1:-2]
    samples = ["1234", "0000", "2065550123", "12065550123", "9999999999", "011442071234567", "0114930123456"]
    for name, pat, _ in others:
        for s in samples:
            if re.search(pat, s):
                sys.exit(f"rule {name} ({pat}) would shadow a cookbook rule on {s}")
    expect = {
        "1234": "+14255551234", "2065550123": "+12065550123", "12065550123": "+12065550123",
        "011442071234567": "+442071234567", "8011234": "+12065551234", "00442071234567": "+442071234567",
    }
    for dialled, want in expect.items():
        got, _ = normalize(rs, dialled)
        if got != want:
            sys.exit(f"{dialled} normalises to {got}, expected {want}")
    compiled = [(n, re.compile(p)) for n, p in rts]
    out = []
    for num in numbers:
        e164, rule = normalize(rs, num)
        if rule != COOKBOOK_NATIONAL[0]:
            sys.exit(f"{num} normalised by {rule}, expected {COOKBOOK_NATIONAL[0]}")
        hits = [n for n, c in compiled if c.search(e164)]
        if len(hits) != 1:
            sys.exit(f"{e164} matches routes {hits}, expected exactly one")
        out.append((num, e164, hits[0]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--users", type=int, default=10000, help="callers user0000.. (default 10000)")
    ap.add_argument("--calls", type=int, default=10000, help="lines of calls.csv (default 10000)")
    ap.add_argument("--gw1-port", type=int, default=GATEWAYS[0][1])
    ap.add_argument("--gw2-port", type=int, default=GATEWAYS[1][1])
    ap.add_argument("--gw-transport", choices=["udp", "tcp"], default="udp",
                    help="how the servers reach the gateways (default udp)")
    a = ap.parse_args()
    if not (1 <= a.users <= 10000 and 1 <= a.calls <= 1000000):
        sys.exit("--users must be 1..10000, --calls 1..1000000")
    if not all(1024 <= p <= 65535 for p in (a.gw1_port, a.gw2_port)) or a.gw1_port == a.gw2_port:
        sys.exit("--gw1-port and --gw2-port: two different ports 1024..65535")
    gws = [(GATEWAYS[0][0], a.gw1_port), (GATEWAYS[1][0], a.gw2_port)]
    rs = rules()
    rts = routes()

    rnd = random.Random(17)
    numbers = []
    for i in range(a.calls):
        npa = AREA_CODES[i % len(AREA_CODES)]
        exchange = rnd.randrange(200, 1000)
        while exchange % 100 == 11 or exchange == 555:  # no N11 exchange, never a LineURI
            exchange = rnd.randrange(200, 1000)
        numbers.append(f"{npa}{exchange:03d}{rnd.randrange(10000):04d}")
    rnd.shuffle(numbers)
    expected = self_check(rs, rts, numbers)

    os.makedirs(os.path.join(a.outdir, "dbtext"), exist_ok=True)

    # confab: the Lync cmdlets
    with open(os.path.join(a.outdir, "confab.ps1"), "w") as f:
        w = f.write
        w("# generated by bench/voice/gen.py: the routed-call benchmark's voice configuration\n")
        w("# The Global dial plan: its default rule out, then the 50 rules in Priority order.\n")
        w("Remove-CsVoiceNormalizationRule -Identity 'Global/Prefix All'\n")
        for name, pat, tr in rs:
            w(f"New-CsVoiceNormalizationRule -Parent Global -Name {name} -Pattern {ps_quote(pat)} "
              f"-Translation {ps_quote(tr)}\n")
        w(f'Set-CsPstnUsage -Identity Global -Usage @{{Add="{USAGE}"}}\n')
        for gw, port in gws:
            w(f"New-CsPstnGateway -Identity {gw} -Address 127.0.0.1 -Port {port} -Transport {a.gw_transport.upper()}\n")
        gwlist = ",".join(f'"PstnGateway:{gw}"' for gw, _ in gws)
        for prio, (name, pat) in enumerate(rts):
            w(f"New-CsVoiceRoute -Identity {name} -NumberPattern {ps_quote(pat)} "
              f'-PstnUsages @{{Add="{USAGE}"}} -PstnGatewayList @{{Add={gwlist}}} -Priority {prio}\n')
        w(f'Set-CsVoicePolicy -Identity Global -PstnUsages @{{Add="{USAGE}"}}\n')
        for i in range(a.users):
            w(f"Set-CsUser -Identity sip:user{i:04d}@{DOMAIN} -EnterpriseVoiceEnabled $true "
              f'-LineURI "tel:+1425555{i:04d}"\n')

    # Kamailio: dialplan table (db_text), dpid 1 = normalization, dpid 2 = routes
    cols = ("id(int,auto) dpid(int) pr(int) match_op(int) match_exp(string) match_len(int) "
            "subst_exp(string) repl_exp(string) attrs(string)")
    with open(os.path.join(a.outdir, "dbtext", "dialplan"), "w") as f:
        f.write(cols + "\n")
        rid = 1
        for prio, (name, pat, tr) in enumerate(rs):
            f.write(":".join([str(rid), "1", str(prio), "1", dbtext_escape(pat), "0", dbtext_escape(pat),
                              dbtext_escape(dotnet_repl_to_kamailio(tr)), dbtext_escape(name)]) + "\n")
            rid += 1
        for prio, (name, pat) in enumerate(rts):
            # used with dp_match (match only, nothing replaced): attrs = the dispatcher set of
            # the route's gateways; the module wants a substitution all the same: the identity
            f.write(":".join([str(rid), "2", str(prio), "1", dbtext_escape(pat), "0", dbtext_escape(pat),
                              dbtext_escape("\\0"), "1"]) + "\n")
            rid += 1
    with open(os.path.join(a.outdir, "dbtext", "version"), "w") as f:
        f.write("id(int,auto) table_name(string) table_version(int) \n0:version:1\n0:dialplan:2\n")
    with open(os.path.join(a.outdir, "dispatcher.list"), "w") as f:
        f.write("# set destination flags priority attrs -- the two PSTN gateways (sipp UAS)\n")
        for gw, port in gws:
            tp = ";transport=tcp" if a.gw_transport == "tcp" else ""
            f.write(f"1 sip:127.0.0.1:{port}{tp} 0 0 name={gw}\n")

    # sipp: caller;auth;dialled number (the shared uac_call.xml's fields)
    with open(os.path.join(a.outdir, "calls.csv"), "w") as f:
        f.write("SEQUENTIAL\n")
        for i, num in enumerate(numbers):
            u = f"user{i % a.users:04d}"
            f.write(f"{u};[authentication username={u} password=pw-{u}];{num}\n")
    with open(os.path.join(a.outdir, "expect.csv"), "w") as f:
        for num, e164, route in expected:
            f.write(f"{num};{e164};{route}\n")
    print(f"wrote {a.outdir}: {len(rs)} rules, {len(rts)} routes, {len(gws)} gateways, "
          f"{a.users} callers, {len(numbers)} calls")


if __name__ == "__main__":
    main()
