#!/usr/bin/python3
"""Makes the SentencePiece fixtures of test_tokenizer: a small unigram model trained here on
text written here (T5 / SigLIP id layout: pad 0, end 1, unknown 2, no start), and reference
tokenisations made with python3-sentencepiece by the Hugging Face SiglipTokenizer procedure
(lowercase, string.punctuation removed, whitespace collapsed, encode, at most 63 ids, the end
id, padded to 64 with "</s>"). Run from this folder with Debian's python: /usr/bin/python3 make_reference.py"""
import io, json, random, re, string
import sentencepiece as spm

random.seed(7)
colors = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "gray", "brown"]
things = ["circle", "square", "triangle", "star", "cross", "ring", "heart", "diamond", "dog", "cat",
          "bird", "tree", "car", "house", "boat", "flower", "mountain", "river", "street", "kitchen"]
places = ["on the left", "on the right", "at the top", "at the bottom", "in the middle", "near the edge"]
textures = ["striped", "dotted", "plain", "checkered", "wavy", "noisy"]
lines = []
for _ in range(3000):
    lines.append(f"a photo of a {random.choice(textures)} {random.choice(colors)} {random.choice(things)} "
                 f"{random.choice(places)}.")
    lines.append(f"an image with {random.randint(1, 9)} {random.choice(things)}s and a {random.choice(colors)} background")
model = io.BytesIO()
spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, vocab_size=90,
                               model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                               character_coverage=1.0, num_threads=1, seed_sentencepiece_size=2000)
open("spiece.model", "wb").write(model.getvalue())

sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
texts = [
    "a photo of a red circle",
    "A Photo of a RED Circle!!!",
    "  an image   with\t3 stars,  and a blue background.  ",
    "striped-green (triangle) at the top; near the edge?",
    "Ünïcode café zebra quokka",
    "",
    "!!!",
    " ".join(["a photo of a yellow star"] * 20),
]

def clean(t):
    t = t.lower().translate(str.maketrans("", "", string.punctuation))
    return re.sub(r"\s+", " ", t).strip()

rows = []
for t in texts:
    ids = sp.encode(clean(t))[:63] + [1]
    rows.append({"text": t, "ids": ids + [1] * (64 - len(ids))})
json.dump({"context": 64, "end": 1, "pad": 1, "vocab_size": sp.get_piece_size(), "rows": rows},
          open("reference.json", "w"), indent=1, ensure_ascii=False)
print("wrote spiece.model and reference.json:", sp.get_piece_size(), "pieces")
