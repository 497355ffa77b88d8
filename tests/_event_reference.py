"""A slow, scalar reference of :func:`zeroshot_audio.events.probability_events` (one column, plain loops), written
from its definition for the tests to compare the vectorised code with."""


def reference_events(p, stamps, options, present=None):
    """Events ``[(onset, offset, peak)]`` of one column of per-segment probabilities ``p``."""
    t = len(p)
    centres = [(stamps[i] + stamps[i + 1]) / 2 for i in range(t)]
    low, high = options.low, options.threshold
    runs = []
    i = 0
    while i < t:
        if p[i] < low:
            i += 1
            continue
        j = i
        while j < t and p[j] >= low:
            j += 1
        if any(p[k] >= high and (present is None or present[k]) for k in range(i, j)):
            onset, offset = float(stamps[i]), float(stamps[j])
            if options.refine == "interpolate":
                if i > 0:  # the curve rises through `low` between the centres of segments i - 1 and i
                    onset = centres[i - 1] + (low - p[i - 1]) / (p[i] - p[i - 1]) * (centres[i] - centres[i - 1])
                if j < t:  # and falls through it between those of j - 1 and j
                    offset = centres[j - 1] + (p[j - 1] - low) / (p[j - 1] - p[j]) * (centres[j] - centres[j - 1])
            runs.append([onset, offset, max(p[i:j])])
        i = j
    joined = []
    for run in runs:
        if joined and run[0] - joined[-1][1] < options.min_gap:
            joined[-1][1] = run[1]
            joined[-1][2] = max(joined[-1][2], run[2])
        else:
            joined.append(run)
    return [tuple(r) for r in joined if r[1] - r[0] >= options.min_duration and r[1] > r[0]]
