#!/usr/bin/env python3
"""Writes resources/general/descriptions.txt and resources/properties/*.txt from the word lists
below: short, varied image descriptions for TextSpan and property ranking on real models.
Run from the repository root: python3 resources/general/make_pool.py (deterministic)."""
import os
import random

OBJECTS = """car bicycle motorcycle bus truck train airplane boat ship helicopter tractor scooter skateboard
chair table sofa bed lamp clock vase bottle cup mug bowl plate fork knife spoon teapot kettle pan
television laptop keyboard phone camera headphones microphone guitar piano violin drum trumpet
book newspaper letter envelope pencil pen scissors backpack suitcase umbrella hat shoe boot glove
scarf jacket dress shirt tie ring necklace watch glasses mirror window door staircase fence bridge
tower castle church lighthouse windmill tent umbrella kite balloon ball basketball football 
baseball bat surfboard ski sled frisbee toy doll robot rocket satellite telescope microscope
candle lantern flashlight key lock hammer screwdriver wrench saw ladder bucket shovel wheelbarrow
bench mailbox statue fountain
pizza sandwich burger cake donut cookie bread cheese apple banana orange lemon strawberry
grapes watermelon pineapple carrot broccoli tomato potato corn mushroom pepper egg coffee tea wine
flower rose tulip sunflower tree cactus leaf seashell rock crystal feather
computer monitor printer refrigerator oven microwave toaster sink bathtub toilet washing machine
wheel tire engine anchor flag map globe calendar poster painting photograph sculpture trophy medal""".split()

MULTI = ["traffic light", "stop sign", "fire hydrant", "parking meter", "street lamp", "teddy bear",
         "hot dog", "palm tree", "pine cone", "washing machine", "tennis racket"]

ANIMALS = """dog puppy cat kitten horse cow sheep goat pig chicken duck goose rabbit hamster mouse rat
squirrel deer moose elk bear panda koala kangaroo monkey gorilla chimpanzee lion tiger
leopard cheetah wolf fox raccoon hedgehog bat elephant giraffe zebra hippo rhino camel llama
alpaca donkey bird eagle hawk owl parrot penguin flamingo swan pigeon crow sparrow robin peacock
hummingbird seagull pelican fish shark whale dolphin seal octopus jellyfish crab lobster starfish
turtle tortoise snake lizard frog crocodile butterfly bee ant spider beetle ladybug dragonfly
snail worm""".split()
ANIMAL_MULTI = ["polar bear"]

PEOPLE = ["a man", "a woman", "a child", "a baby", "a boy", "a girl", "an old man", "an old woman",
          "a teenager", "a couple", "a family", "a group of friends", "a crowd", "a soldier", "a doctor",
          "a nurse", "a chef", "a police officer", "a firefighter", "a farmer", "a student", "a teacher",
          "a musician", "a dancer", "an athlete", "a runner", "a swimmer", "a cyclist", "a skier",
          "a surfer", "a climber", "a painter", "a photographer", "a worker", "a pilot", "an astronaut",
          "a bride", "a groom", "a clown", "a king", "a queen", "a knight", "a cowboy", "a scientist",
          "a businessman", "a tourist", "a fisherman", "a mechanic", "a waiter", "a judge"]

PLACES = ["a beach", "a forest", "a desert", "a mountain", "a lake", "a river", "a waterfall",
          "an ocean", "a field", "a meadow", "a farm", "a garden", "a park", "a jungle", "a swamp",
          "a glacier", "a canyon", "a cave", "a volcano", "an island", "a city street", "a highway",
          "a parking lot", "a train station", "an airport", "a harbor", "a market", "a shopping mall",
          "a supermarket", "a restaurant", "a cafe", "a bar", "a kitchen", "a living room", "a bedroom",
          "a bathroom", "an office", "a classroom", "a library", "a museum", "a church", "a temple",
          "a stadium", "a gym", "a swimming pool", "a playground", "a hospital", "a factory",
          "a warehouse", "a construction site", "a village", "a skyline", "a rooftop", "a subway",
          "a tunnel", "a bridge over water", "a snowy landscape", "a rice field", "a vineyard",
          "a lighthouse on a cliff", "a campsite", "a zoo", "an aquarium", "a theater", "a concert hall"]

COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white",
          "gray", "beige", "turquoise", "cyan", "magenta", "violet", "navy blue", "dark green",
          "light blue", "gold", "silver", "maroon", "olive", "teal", "lavender", "cream", "tan",
          "crimson", "coral", "mint green"]

MATERIALS = ["wood", "metal", "glass", "plastic", "stone", "brick", "concrete", "marble", "leather",
             "fabric", "wool", "silk", "paper", "cardboard", "rubber", "ceramic", "porcelain", "gold",
             "steel", "copper", "ice", "sand", "clay", "fur", "denim", "velvet", "bamboo", "straw"]

TEXTURES = ["smooth", "rough", "shiny", "matte", "fuzzy", "furry", "wrinkled", "cracked", "rusty",
            "glossy", "grainy", "bumpy", "soft", "hard", "wet", "dry", "dusty", "muddy", "transparent",
            "reflective", "woven", "knitted", "polished", "weathered", "scratched", "foamy"]

PATTERNS = ["striped", "checkered", "polka dot", "plaid", "floral", "zigzag", "spotted", "dotted",
            "camouflage", "paisley", "geometric", "wavy", "spiral", "honeycomb", "herringbone",
            "grid", "tiled", "mosaic", "marbled", "tie-dye", "leopard print", "zebra print"]

SHAPES = ["circle", "square", "triangle", "rectangle", "hexagon", "star", "heart", "diamond", "oval",
          "cross", "crescent", "spiral", "cube", "sphere", "cylinder", "cone", "pyramid", "arch",
          "ring", "line", "curve", "arrow", "octagon", "pentagon"]

COUNTS = ["one", "two", "three", "four", "five", "several", "many", "a pair of", "a group of", "a row of",
          "a pile of", "a stack of", "a crowd of", "a herd of", "a flock of", "a dozen"]

LOCATIONS = ["on the left", "on the right", "at the top", "at the bottom", "in the center",
             "in the top left corner", "in the top right corner", "in the bottom left corner",
             "in the bottom right corner", "in the foreground", "in the background", "far away",
             "close up", "at the edge of the image", "in the middle of the image"]

LIGHTING = ["bright sunlight", "soft light", "harsh shadows", "backlight", "low light", "candlelight",
            "neon lights", "studio lighting", "golden hour light", "blue hour light", "overcast light",
            "moonlight", "a flash", "fluorescent light", "spotlight", "dim light", "sunset light",
            "sunrise light", "foggy light", "stage lights"]

STYLES = ["a photograph", "a black and white photo", "a sepia photo", "a painting", "an oil painting",
          "a watercolor painting", "a pencil sketch", "a charcoal drawing", "an ink drawing", "a cartoon",
          "an anime drawing", "a comic panel", "a 3D render", "pixel art", "a vector illustration",
          "a mosaic", "a stained glass window", "a graffiti", "a tattoo", "an embroidery",
          "a vintage photo", "a polaroid", "a blurry photo", "a long exposure photo", "an aerial photo",
          "a macro photo", "a satellite image", "an x-ray", "a thermal image", "a microscope image",
          "a screenshot", "a diagram", "a blueprint", "a map", "a collage", "a poster", "a postcard",
          "a children's drawing", "a low resolution image", "a high contrast image"]

MOODS = ["calm", "peaceful", "happy", "joyful", "sad", "gloomy", "mysterious", "scary", "dramatic",
         "romantic", "nostalgic", "lonely", "energetic", "chaotic", "serene", "cozy", "festive",
         "tense", "dreamy", "playful", "elegant", "eerie", "majestic", "cheerful", "melancholic"]

TIMES = ["at night", "at dawn", "at dusk", "at noon", "in winter", "in summer", "in autumn",
         "in spring", "in the rain", "in the snow", "in the fog", "during a storm", "on a sunny day",
         "on a cloudy day", "under a starry sky"]

TEXT_IN_IMAGE = ["a sign with text", "a street sign", "a shop sign", "a license plate", "a book cover",
                 "a page of text", "handwriting", "a logo", "a label on a bottle", "a menu", "a price tag",
                 "a billboard", "a road sign", "graffiti lettering", "a neon sign", "a banner",
                 "a newspaper headline", "a receipt", "a chalkboard with writing", "a calendar page",
                 "a clock face with numbers", "a scoreboard", "a ticket", "a barcode", "a QR code",
                 "subtitles", "a speech bubble", "a map legend", "the word stop", "numbers on a jersey"]

ACTIONS = ["running", "walking", "sitting", "standing", "jumping", "sleeping", "eating", "drinking",
           "swimming", "flying", "climbing", "dancing", "playing", "reading", "writing", "cooking",
           "laughing", "smiling", "crying", "talking", "riding a bicycle", "driving", "fishing",
           "painting", "singing", "working", "hugging", "waving"]


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def main():
    rng = random.Random(7)
    pool = []
    add = pool.append
    for o in OBJECTS + MULTI:
        add(f"{article(o)} {o}")
        add(f"a photo of {article(o)} {o}")
    for a in ANIMALS + ANIMAL_MULTI:
        add(f"{article(a)} {a}")
        add(f"a close-up photo of {article(a)} {a}")
    for p in PEOPLE:
        add(p)
        add(f"a portrait of {p}")
    for p in PLACES:
        add(f"a photo of {p}")
        add(f"a view of {p}")
    for c in COLORS:
        add(f"{article(c)} {c} image")
        add(f"an image with {c} colors")
        add(f"something {c}")
    for m in MATERIALS:
        add(f"something made of {m}")
        add(f"{article(m)} {m} surface")
    for t in TEXTURES:
        add(f"{article(t)} {t} texture")
        add(f"{article(t)} {t} surface")
    for p in PATTERNS:
        add(f"a {p} pattern")
    for s in SHAPES:
        add(f"{article(s)} {s} shape")
        add(f"something shaped like {article(s)} {s}")
    for l in LIGHTING:
        add(f"a photo taken in {l}")
    for s in STYLES:
        add(s)
    for m in MOODS:
        add(f"{article(m)} {m} scene")
        add(f"{article(m)} {m} atmosphere")
    for t in TIMES:
        add(f"a photo taken {t}")
    for t in TEXT_IN_IMAGE:
        add(f"an image of {t}")
    for l in LOCATIONS:
        add(f"an object {l}")
    # Combinations, sampled without replacement.
    combos = set()
    def sample(n, make):
        made = 0
        while made < n:
            text = make()
            if text not in combos:
                combos.add(text)
                made += 1
    sample(220, lambda: f"{article(c := rng.choice(COLORS))} {c} {rng.choice(OBJECTS + MULTI)}")
    sample(120, lambda: f"{article(m := rng.choice(MATERIALS))} {m} {rng.choice(OBJECTS + MULTI)}")
    sample(120, lambda: f"{article(a := rng.choice(ANIMALS))} {a} in {rng.choice(PLACES)}")
    sample(120, lambda: f"{rng.choice(PEOPLE)} {rng.choice(ACTIONS)}")
    sample(100, lambda: f"{rng.choice(COUNTS)} {rng.choice(ANIMALS)}s")
    sample(100, lambda: f"{rng.choice(STYLES)} of {article(o := rng.choice(OBJECTS))} {o}")
    sample(80, lambda: f"{rng.choice(PLACES)} {rng.choice(TIMES)}")
    sample(60, lambda: f"{article(p := rng.choice(PATTERNS))} {p} {rng.choice(['shirt', 'dress', 'scarf', 'blanket', 'wall', 'floor', 'umbrella', 'bag'])}")
    sample(60, lambda: f"{article(o := rng.choice(OBJECTS))} {o} {rng.choice(LOCATIONS)}")
    sample(60, lambda: f"{article(a := rng.choice(ANIMALS))} {a} {rng.choice(LOCATIONS)}")
    pool += sorted(combos)
    seen, out = set(), []
    for text in pool:
        if text not in seen:
            seen.add(text)
            out.append(text)
    root = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(root, "descriptions.txt"), "w") as f:
        f.write("# General-purpose image descriptions for TextSpan (generated by make_pool.py).\n")
        f.write("\n".join(out) + "\n")
    props = os.path.join(root, "..", "properties")
    lists = {"color": COLORS, "shape": SHAPES, "texture": TEXTURES, "material": MATERIALS, "pattern": PATTERNS,
             "animal": ANIMALS + ANIMAL_MULTI, "person": [p.split(" ", 1)[1] for p in PEOPLE],
             "location": LOCATIONS, "lighting": LIGHTING, "style": STYLES, "mood": MOODS, "count": COUNTS,
             "scene": [p.split(" ", 1)[1] for p in PLACES], "object": OBJECTS + MULTI, "text": TEXT_IN_IMAGE,
             "time": TIMES, "action": ACTIONS}
    for name, words in lists.items():
        with open(os.path.join(props, name + ".txt"), "w") as f:
            f.write("\n".join(dict.fromkeys(words)) + "\n")
    print(len(out), "descriptions;", len(lists), "property lists")


if __name__ == "__main__":
    main()
