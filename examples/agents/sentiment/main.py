"""sentiment: a small lexicon-based sentiment scorer (standard library only).

Each known word carries a weight; an intensifier just before it ("very good")
multiplies the weight, a negator up to three words before it ("not very good")
flips its sign. The summed weight is squashed into [-1, 1].
"""

import math
import re

LEXICON = {
    # positive
    "good": 2.0, "great": 3.0, "excellent": 3.5, "amazing": 3.5, "awesome": 3.5,
    "wonderful": 3.5, "fantastic": 3.5, "love": 3.0, "loved": 3.0, "loves": 3.0,
    "like": 1.5, "liked": 1.5, "enjoy": 2.0, "enjoyed": 2.0, "happy": 2.5,
    "glad": 2.0, "nice": 2.0, "pleasant": 2.0, "fast": 1.0, "easy": 1.5,
    "helpful": 2.0, "perfect": 3.0, "best": 3.0, "better": 1.5, "recommend": 2.0,
    "reliable": 2.0, "beautiful": 3.0, "fun": 2.0, "satisfied": 2.0, "thanks": 1.5,
    "thank": 1.5, "impressive": 2.5, "brilliant": 3.0, "friendly": 2.0, "win": 2.0,
    # negative
    "bad": -2.5, "terrible": -3.5, "awful": -3.5, "horrible": -3.5, "hate": -3.0,
    "hated": -3.0, "hates": -3.0, "dislike": -2.0, "poor": -2.0, "worse": -2.0,
    "worst": -3.5, "slow": -1.5, "broken": -2.5, "bug": -1.5, "buggy": -2.5,
    "crash": -2.5, "crashes": -2.5, "crashed": -2.5, "sad": -2.0, "angry": -2.5,
    "annoying": -2.0, "disappointed": -2.5, "disappointing": -2.5, "useless": -3.0,
    "boring": -2.0, "difficult": -1.5, "hard": -1.0, "fail": -2.5, "failed": -2.5,
    "fails": -2.5, "problem": -1.5, "problems": -1.5, "ugly": -2.5, "wrong": -2.0,
    "expensive": -1.5, "refund": -1.5, "lose": -2.0, "lost": -1.5,
}

NEGATORS = {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor",
            "cannot", "without", "hardly"}
INTENSIFIERS = {"very": 1.5, "really": 1.4, "extremely": 1.8, "so": 1.3,
                "super": 1.5, "incredibly": 1.8, "quite": 1.2, "slightly": 0.6,
                "somewhat": 0.7, "barely": 0.5}

# Normalisation constant: score = raw / sqrt(raw^2 + ALPHA).
ALPHA = 15.0
NEUTRAL_BAND = 0.05
NEGATION_WINDOW = 3

TOKEN = r"[a-z]+(?:'[a-z]+)?"
SENTENCE_SPLIT = r"(?<=[.!?])\s+|\n+"


def _is_negator(token):
    return token in NEGATORS or token.endswith("n't")


def _score_sentence(tokens):
    raw, pos, neg = 0.0, 0, 0
    for i, tok in enumerate(tokens):
        weight = LEXICON.get(tok)
        if weight is None:
            continue
        if i > 0 and tokens[i - 1] in INTENSIFIERS:
            weight *= INTENSIFIERS[tokens[i - 1]]
        window = tokens[max(0, i - NEGATION_WINDOW):i]
        if any(_is_negator(t) for t in window):
            weight = -weight * 0.75  # "not good" is milder than "bad"
        raw += weight
        if weight > 0:
            pos += 1
        elif weight < 0:
            neg += 1
    return raw, pos, neg


def run(inputs, ctx):
    text = inputs.get("text")
    if not isinstance(text, str):
        raise ValueError("inputs.text must be a string")

    sentences = [s for s in re.split(SENTENCE_SPLIT, text.lower().replace("\u2019", "'")) if s.strip()]
    total = len(sentences)
    raw, positive, negative = 0.0, 0, 0
    step = max(1, total // 10)
    if total == 0:
        ctx.progress(1.0, "no sentences to score")
    for n, sentence in enumerate(sentences, start=1):
        r, p, q = _score_sentence(re.findall(TOKEN, sentence))
        raw += r
        positive += p
        negative += q
        if n % step == 0 or n == total:
            ctx.progress(n / total, "scored %d/%d sentences" % (n, total))

    score = raw / math.sqrt(raw * raw + ALPHA) if raw else 0.0
    score = round(max(-1.0, min(1.0, score)), 4)
    if score >= NEUTRAL_BAND:
        label = "positive"
    elif score <= -NEUTRAL_BAND:
        label = "negative"
    else:
        label = "neutral"

    print("sentiment %s (score %.4f) over %d sentences: %d positive, %d negative words"
          % (label, score, total, positive, negative))
    return {"score": score, "label": label, "positive": positive, "negative": negative}
