#!/usr/bin/env python3
"""What one Opus encode and decode cost on this machine, by encoder complexity.

With every participant talking, an MCU encodes one mix-minus-self Opus frame per
participant every 20 ms (confab and Janus alike), so the encoder's complexity sets the
floor of the CPU per Opus participant. This times libopus (the system's libopus.so.0,
through janus_bridge.py's ctypes binding plus opus_encoder_ctl) on 20 ms mono frames at
16 kHz (both mixers' rate) of a 30-tone mix, at 24 kbit/s (confab's bitrate), best of
--reps passes over --frames frames, single-threaded.

  python3 bench/mcu/opus_cost.py [--complexities 0,1,2,3,4,5,6,8,10]
"""

import argparse
import ctypes
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import janus_bridge as jb  # noqa: E402

OPUS_SET_BITRATE = 4002
OPUS_SET_COMPLEXITY = 4010
RATE, N = 16000, 320


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--complexities", default="0,1,2,3,4,5,6,8,10")
    ap.add_argument("--bitrate", type=int, default=24000)
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    o = jb.Opus()
    lib = o.lib
    lib.opus_encoder_ctl.restype = ctypes.c_int
    rng = np.random.default_rng(1)
    t = np.arange(RATE * 5) / RATE
    pcm = sum(700 * np.sin(2 * np.pi * f * t + rng.random() * 6.28) for f in rng.integers(200, 3300, 30))
    pcm = np.clip(pcm, -32768, 32767).astype(np.int16)
    frames = [np.ascontiguousarray(pcm[i * N:(i + 1) * N]) for i in range(args.frames)]
    out = ctypes.create_string_buffer(1500)
    print("| complexity | encode µs / 20 ms frame | % of a core per encoded stream | bytes / frame |")
    print("|---|---|---|---|")
    packets = None
    for cx in [int(x) for x in args.complexities.split(",")]:
        err = ctypes.c_int(0)
        enc = lib.opus_encoder_create(RATE, 1, jb.Opus.APPLICATION_VOIP, ctypes.byref(err))
        if err.value:
            raise RuntimeError(f"opus_encoder_create {err.value}")
        lib.opus_encoder_ctl(ctypes.c_void_p(enc), OPUS_SET_COMPLEXITY, ctypes.c_int(cx))
        lib.opus_encoder_ctl(ctypes.c_void_p(enc), OPUS_SET_BITRATE, ctypes.c_int(args.bitrate))
        best, total = 1e9, 0
        pk = []
        for rep in range(args.reps):
            t0 = time.perf_counter()
            for f in frames:
                n = lib.opus_encode(enc, f.ctypes.data, N, out, 1500)
                if rep == 0:
                    total += n
                    pk.append(out.raw[:n])
            best = min(best, (time.perf_counter() - t0) / len(frames))
        if packets is None:
            packets = pk
        print(f"| {cx} | {best * 1e6:.0f} | {100 * best / 0.02:.2f} | {total / len(frames):.0f} |")
    dec = o.decoder(RATE)
    best = 1e9
    for _ in range(args.reps):
        t0 = time.perf_counter()
        for p in packets:
            o.decode(dec, p, RATE)
        best = min(best, (time.perf_counter() - t0) / len(packets))
    print(f"\ndecode (Python ctypes call included): {best * 1e6:.0f} µs / frame = {100 * best / 0.02:.2f} % of a core per stream")


if __name__ == "__main__":
    main()
