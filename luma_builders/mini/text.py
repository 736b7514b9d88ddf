"""Texts for the mini source: class facts and sentence templates in the styles of LUMA's 13 prompts.

Related classes share groups of facts (people, hunters, trees, vehicles...), so a text model has to
learn which details are specific to a class and which are not. A minority of texts name their class; the others
use a paraphrase or the class's kind ("this animal"). Each text draws how specific it is: vague texts hold only
facts their groups share, so that they fit several classes; specific ones hold the class's own facts. Some texts
name a related class too.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from luma_builders.classes import CLASS_NAMES

# Every fact fits "found {where}", "has {part}" and "seen {act}"; parts lose a leading "a"/"an" after "its".
GROUPS = {
    "people": dict(
        kind="person",
        where=("at home", "in the park", "in the city", "at the market"),
        parts=("bright eyes", "warm hands", "rosy cheeks"),
        colours=("brown", "pale", "dark"),
        acts=("walking down the street", "laughing with friends", "eating lunch", "reading a book"),
        adjs=("cheerful", "curious", "tired"),
    ),
    "pets": dict(
        kind="pet",
        where=("in the house", "in the garden", "by the fireplace"),
        parts=("soft fur", "padded paws", "long whiskers"),
        colours=("brown", "white", "black"),
        acts=("sleeping in the sun", "playing with a ball", "waiting by the door"),
        adjs=("friendly", "lazy"),
    ),
    "hunters": dict(
        kind="animal",
        where=("in the wild", "in tall grass"),
        parts=("sharp claws", "pointed ears", "sharp teeth"),
        colours=("orange", "grey", "tawny"),
        acts=("hunting at night", "stalking prey", "sniffing the air"),
        adjs=("fierce", "clever", "quiet"),
    ),
    "woodland": dict(
        kind="animal",
        where=("in the forest", "among the trees"),
        parts=("thick fur",),
        colours=("brown", "dark green"),
        acts=("wandering through the woods", "hiding in the undergrowth"),
        adjs=("shy", "wild"),
    ),
    "savanna": dict(
        kind="animal",
        where=("on the savanna", "in hot dry lands", "in the desert"),
        parts=("long legs",),
        colours=("sandy", "golden"),
        acts=("resting in the shade", "walking across the sand"),
        adjs=("patient", "tough"),
    ),
    "farm": dict(
        kind="animal",
        where=("on a farm", "in a green field", "near the barn"),
        parts=("strong hooves", "long legs"),
        colours=("brown", "black and white"),
        acts=("grazing in the meadow", "pulling a cart"),
        adjs=("gentle", "strong"),
    ),
    "water": dict(
        kind="sea creature",
        where=("in the sea", "under the waves", "near the coast"),
        parts=("smooth fins", "slippery skin"),
        colours=("blue", "silver"),
        acts=("swimming in deep water", "diving below the surface"),
        adjs=("graceful", "sleek"),
    ),
    "critters": dict(
        kind="creature",
        where=("in the garden", "in the grass", "under a rock"),
        parts=("tiny legs",),
        colours=("green", "brown"),
        acts=("hiding under leaves", "darting away quickly"),
        adjs=("tiny", "quick"),
    ),
    "flyers": dict(
        kind="creature",
        where=("in the sky", "above the flowers"),
        parts=("delicate wings",),
        colours=("yellow", "bright"),
        acts=("flying over the fields", "landing on a flower"),
        adjs=("busy", "lively"),
    ),
    "plants": dict(
        kind="plant",
        where=("in the garden", "in the park"),
        parts=("green leaves", "deep roots"),
        colours=("green",),
        acts=("growing toward the sun", "swaying in the wind"),
        adjs=("tall", "quiet"),
    ),
    "trees": dict(
        kind="tree",
        where=("in the forest", "on a hill"),
        parts=("thick bark", "long branches"),
        colours=("green", "brown"),
        acts=("giving shade", "dropping seeds"),
        adjs=("old", "tall"),
    ),
    "landscapes": dict(
        kind="place",
        where=("far from the city", "under the open sky"),
        parts=("wide views", "endless space"),
        colours=("blue", "green", "grey"),
        acts=("stretching to the horizon", "changing with the seasons"),
        adjs=("vast", "calm"),
    ),
    "buildings": dict(
        kind="building",
        where=("in the city", "in the village", "on a hill"),
        parts=("stone walls", "tall windows", "heavy doors"),
        colours=("grey", "red"),
        acts=("standing for many years", "welcoming visitors"),
        adjs=("old", "solid"),
    ),
    "ways": dict(
        kind="structure",
        where=("between two towns", "across the valley"),
        parts=("smooth lanes", "painted lines"),
        colours=("grey", "black"),
        acts=("carrying traffic", "connecting towns"),
        adjs=("long", "busy"),
    ),
    "vehicles": dict(
        kind="vehicle",
        where=("on the road", "in the city", "at the station"),
        parts=("big wheels", "a loud engine"),
        colours=("red", "yellow", "green"),
        acts=("carrying passengers", "moving fast", "stopping at the lights"),
        adjs=("noisy", "fast"),
    ),
    "furniture": dict(
        kind="piece of furniture",
        where=("in the living room", "in the bedroom", "in the kitchen"),
        parts=("four legs", "wooden panels"),
        colours=("brown", "white"),
        acts=("standing in the corner", "holding heavy things"),
        adjs=("sturdy", "comfortable"),
    ),
    "devices": dict(
        kind="device",
        where=("in the living room", "on a desk", "on the wall"),
        parts=("small buttons", "shiny glass", "a long cord"),
        colours=("black", "silver", "white"),
        acts=("glowing in the dark", "humming quietly"),
        adjs=("modern", "handy"),
    ),
}

# word -> (groups, own facts); the first group gives the kind unless the class names its own.
CLASS_FACTS = {
    "man": (("people",), dict(
        where=("at the office",), parts=("broad shoulders", "rough stubble"),
        acts=("fixing a car", "shaving in the morning"), adjs=("tall",))),
    "boy": (("people",), dict(
        where=("at school", "on the playground"), parts=("scraped knees", "messy hair"),
        acts=("kicking a ball", "climbing trees"), adjs=("playful",))),
    "house": (("buildings",), dict(
        where=("on a quiet street",), parts=("tiled roofs", "warm rooms"),
        acts=("keeping a family warm",), colours=("white",), adjs=("cozy",))),
    "woman": (("people",), dict(
        where=("at the office",), parts=("long hair",),
        acts=("painting a picture", "fixing a car"), adjs=("tall", "confident"))),
    "girl": (("people",), dict(
        where=("at school", "on the playground"), parts=("braided hair",),
        acts=("skipping rope", "climbing trees"), adjs=("playful",))),
    "table": (("furniture",), dict(
        where=("in the dining room",), parts=("a smooth top",),
        acts=("holding plates and cups",), adjs=("wide",))),
    "road": (("ways",), dict(
        where=("through the countryside",), parts=("sharp curves",),
        acts=("winding over the hills",), colours=("black",), adjs=("dusty",))),
    "horse": (("farm",), dict(
        where=("in the stable",), parts=("a flowing mane",),
        acts=("galloping across the field", "jumping fences"), colours=("chestnut",),
        adjs=("proud", "fast"))),
    "dog": (("pets",), dict(
        where=("in the yard",), parts=("floppy ears", "a wagging tail"),
        acts=("fetching sticks", "barking at the mailman"), adjs=("loyal",))),
    "ship": (("vehicles", "water"), dict(
        kind="boat", where=("at the harbour", "on the ocean"), parts=("tall masts", "white sails"),
        acts=("sailing across the ocean", "carrying cargo"), colours=("white",), adjs=("huge",))),
    "bird": (("flyers", "critters"), dict(
        kind="bird", where=("in a nest", "on a branch"), parts=("bright feathers", "a small beak"),
        acts=("singing at dawn", "building a nest"), colours=("blue", "red"), adjs=("cheerful",))),
    "mountain": (("landscapes",), dict(
        where=("above the clouds",), parts=("snowy peaks", "steep slopes", "rocky cliffs"),
        acts=("towering over the valley", "catching the first snow"), colours=("white",),
        adjs=("majestic",))),
    "bed": (("furniture",), dict(
        where=("in the bedroom",), parts=("soft pillows", "warm blankets"),
        acts=("waiting for sleepy people",), colours=("blue",), adjs=("soft",))),
    "train": (("vehicles",), dict(
        where=("on the tracks",), parts=("long carriages", "steel wheels"),
        acts=("rushing through tunnels", "whistling at crossings"), adjs=("long",))),
    "bridge": (("ways", "buildings"), dict(
        where=("across the river",), parts=("steel cables", "stone arches"),
        acts=("spanning the water",), adjs=("long",))),
    "fish": (("water",), dict(
        where=("in the river", "in a pond"), parts=("shiny scales", "small fins"),
        acts=("swimming in circles", "hiding among the reeds"), colours=("orange",), adjs=("slippery",))),
    "cloud": (("landscapes",), dict(
        kind="sight", where=("in the sky", "over the mountains"), parts=("fluffy edges", "soft shapes"),
        acts=("drifting across the sky", "bringing rain"), colours=("white", "grey"), adjs=("fluffy",))),
    "chair": (("furniture",), dict(
        where=("at the desk",), parts=("a curved backrest", "armrests"),
        acts=("waiting at the desk",), adjs=("wooden",))),
    "cat": (("pets", "hunters"), dict(
        where=("on the sofa",), parts=("soft paws", "long whiskers"),
        acts=("purring on the sofa", "chasing mice"), colours=("ginger",), adjs=("independent",))),
    "baby": (("people",), dict(
        where=("in a crib", "in a stroller"), parts=("tiny fingers", "chubby cheeks"),
        acts=("crawling on the floor", "giggling at toys"), adjs=("tiny", "sleepy"))),
    "castle": (("buildings",), dict(
        where=("behind a moat",), parts=("tall towers", "thick stone walls"),
        acts=("guarding the kingdom",), adjs=("ancient",))),
    "forest": (("landscapes", "trees", "woodland"), dict(
        where=("in the mountains",), parts=("tall trees", "mossy ground"),
        acts=("rustling in the wind", "hiding many animals"), colours=("dark green",), adjs=("dense",))),
    "television": (("devices",), dict(
        where=("in the living room",), parts=("a bright screen", "a remote control"),
        acts=("showing the evening news", "glowing in the dark"), adjs=("flat", "large"))),
    "bear": (("woodland", "hunters"), dict(
        where=("in a cave",), parts=("huge paws",),
        acts=("catching salmon", "sleeping through the winter"), colours=("black",),
        adjs=("huge", "strong"))),
    "camel": (("savanna", "farm"), dict(
        where=("in the desert",), parts=("two humps", "long eyelashes"),
        acts=("carrying heavy loads",), colours=("sandy",), adjs=("patient",))),
    "sea": (("landscapes", "water"), dict(
        kind="place", where=("beyond the beach", "along the coast"), parts=("crashing waves", "salty water"),
        acts=("sparkling in the sun", "crashing against the rocks"), colours=("turquoise",), adjs=("deep",))),
    "fox": (("woodland", "hunters"), dict(
        where=("near the henhouse",), parts=("a bushy tail",),
        acts=("sneaking past the henhouse", "hunting at night"), colours=("red",), adjs=("sly", "clever"))),
    "plain": (("landscapes",), dict(
        where=("in the middle of the country",), parts=("flat ground", "tall grass"),
        acts=("waving in the wind",), colours=("golden",), adjs=("flat", "open"))),
    "bus": (("vehicles",), dict(
        where=("at the bus stop",), parts=("many seats", "big windows"),
        acts=("carrying passengers",), colours=("yellow",), adjs=("crowded",))),
    "snake": (("critters",), dict(
        where=("in the desert",), parts=("smooth scales", "a forked tongue"),
        acts=("slithering through the grass", "sunning itself on a rock"), colours=("striped",),
        adjs=("silent",))),
    "lamp": (("devices", "furniture"), dict(
        where=("on the bedside table",), parts=("a lampshade", "a bright bulb"),
        acts=("lighting up the room",), colours=("yellow",), adjs=("warm",))),
    "clock": (("devices",), dict(
        where=("in the hallway",), parts=("a round face", "two hands", "ticking gears"),
        acts=("ticking quietly", "chiming every hour"), colours=("gold",), adjs=("old",))),
    "lion": (("hunters", "savanna"), dict(
        where=("on the savanna",), parts=("a golden mane",),
        acts=("roaring at dusk", "resting in the shade"), colours=("golden",), adjs=("proud", "powerful"))),
    "tank": (("vehicles",), dict(
        where=("on the battlefield", "in a museum"), parts=("heavy tracks", "a long cannon", "thick armour"),
        acts=("rolling over rough ground", "moving slowly"), colours=("khaki",), adjs=("heavy", "armoured"))),
    "palm": (("trees", "plants"), dict(
        where=("on the beach", "on a tropical island"), parts=("long fronds", "coconuts"),
        acts=("swaying in the sea breeze",), adjs=("tropical",))),
    "rabbit": (("pets", "woodland"), dict(
        where=("in a burrow", "in the meadow"), parts=("long ears", "a fluffy tail"),
        acts=("hopping across the lawn", "nibbling carrots"), colours=("grey",), adjs=("fluffy", "quick"))),
    "pine": (("trees", "plants"), dict(
        where=("in the mountains", "in the cold north"), parts=("sharp needles", "pine cones"),
        acts=("staying green all winter",), colours=("dark green",), adjs=("evergreen",))),
    "cattle": (("farm",), dict(
        kind="animals", plural=True, where=("in the pasture",), parts=("curved horns",),
        acts=("chewing grass", "walking in a herd"), adjs=("calm",))),
    "oak": (("trees", "plants"), dict(
        where=("in the park",), parts=("acorns", "wide branches"),
        acts=("dropping acorns",), adjs=("mighty",))),
    "mouse": (("critters",), dict(
        where=("in the barn", "behind the wall"), parts=("a thin tail", "tiny whiskers"),
        acts=("nibbling cheese", "scurrying across the floor"), colours=("grey",), adjs=("timid",))),
    "frog": (("critters", "water"), dict(
        where=("in a pond", "on a lily pad"), parts=("long legs", "webbed feet"),
        acts=("jumping into the water", "croaking at night", "catching flies"), adjs=("slimy",))),
    "ray": (("water",), dict(
        where=("on the sea floor",), parts=("wide flat fins", "a long tail"),
        acts=("gliding over the sand", "hiding in the sand"), colours=("grey", "spotted"), adjs=("flat",))),
    "bicycle": (("vehicles",), dict(
        where=("in the bike lane", "in the park"), parts=("two wheels", "pedals", "a chain"),
        acts=("zooming down the hill", "carrying a rider to work"), colours=("blue",), adjs=("light",))),
    "truck": (("vehicles",), dict(
        where=("on the highway", "at the warehouse"), parts=("huge tyres", "a big trailer"),
        acts=("carrying heavy loads", "delivering goods"), colours=("white",), adjs=("heavy",))),
    "elephant": (("savanna", "farm"), dict(
        where=("near the watering hole",), parts=("a long trunk", "big ears", "ivory tusks"),
        acts=("spraying water", "walking in a herd"), colours=("grey",), adjs=("huge", "wise"))),
    "roses": (("plants", "flyers"), dict(
        kind="flowers", plural=True, where=("by the fence",), parts=("thorny stems", "soft petals"),
        acts=("blooming in summer",), colours=("red", "pink"), adjs=("fragrant", "beautiful"))),
    "wolf": (("hunters", "woodland"), dict(
        where=("in the mountains",), parts=("thick grey fur",),
        acts=("howling at the moon", "hunting in a pack"), colours=("grey",), adjs=("wild",))),
    "telephone": (("devices",), dict(
        where=("in the hallway",), parts=("a curly cord", "small buttons"),
        acts=("ringing loudly", "carrying voices far away"), colours=("red",), adjs=("old-fashioned",))),
    "bee": (("flyers", "critters"), dict(
        where=("in a hive",), parts=("a striped body",),
        acts=("buzzing between flowers", "making honey"), colours=("yellow and black",), adjs=("busy",))),
    "whale": (("water",), dict(
        where=("in the open ocean",), parts=("a huge tail", "a blowhole"),
        acts=("singing deep songs", "spouting water"), colours=("grey",), adjs=("enormous", "gentle"))),
}  # fmt: skip

# One tuple per prompt style: the first sentence always, then up to three of the rest, in order.
STYLES = (
    (  # description
        "{The} {is} usually found {where}.",
        "{It} {has} {part} and {part2}.",
        "Most people picture {them} as {colour}, sometimes {colour2}.",
        "{It} {is} often seen {act}.",
    ),
    (  # short story
        "One {season} morning, {name} spotted {a} {where}.",
        "{The} {was} {act}, and {name} stopped to watch.",
        "In the soft light, {its_part} looked almost {colour}.",
        "Years later, {name} still told the story of that day.",
    ),
    (  # poem
        "Oh {word}, so {adj} and {colour}, {where} you stay,",
        "with {part} you spend the {season} {act},",
        "and when the stars come out, {where2} you rest.",
        "No one forgets you, {adj2} and {colour2}.",
    ),
    (  # list of facts
        "Here are a few facts about {the}.",
        "Fact: {it} {is} usually found {where}.",
        "Fact: {it} {has} {part}.",
        "Fact: {it} can often be seen {act}.",
        "Fact: the most common colours are {colour} and {colour2}.",
    ),
    (  # dialogue
        '"Look, {a} {where}!" said {name}.',
        '"Yes, {it} {is} {act}," replied {name2}.',
        '"Did you notice {its_part}?" asked {name}.',
        '"Of course, who could miss {them}?" laughed {name2}.',
    ),
    (  # news report
        "Residents reported {a} {where} on {day} morning.",
        "Witnesses said {the} {was} {act} for nearly an hour.",
        'Officials described {its_part} as "{adj} and {colour}".',
        "Experts say such sightings are common in {season}.",
    ),
    (  # explanation for a child
        "Do you know what {a} {is}, little one?",
        "{A} {is} {kind_a} that you can find {where}.",
        "If you look closely, you will see {its_part}!",
        "{It} {is} often {act}, just like in your picture books.",
    ),
    (  # comparison
        "{The} and the {other} have a lot in common.",
        "Both can be found {where}, and both are often {colour}.",
        "But only {the} {has} {part}.",
        "From far away, people sometimes mix them up.",
    ),
    (  # a day in the life
        "In the morning, {the} {is} {where}.",
        "By noon {it} {is} busy {act}.",
        "In the afternoon, {it} {is} {act2}.",
        "When evening comes, {it} {is} resting {where2}.",
    ),
    (  # advertisement
        "Introducing the most {adj} {word} you have ever seen!",
        "With {part} in {colour}, {it} will brighten your day.",
        "Find {them} {where}, today only.",
    ),
    (  # diary entry
        "Dear diary, today I saw {a} {where}.",
        "{It} {was} {act}, and I could not look away.",
        "I keep thinking about {its_part}.",
        "Tomorrow I will go back {where2} to look again.",
    ),
    (  # riddle
        "I live {where} and I have {part}.",
        "You may see me {act}.",
        "My colours are {colour} and {colour2}.",
        "What am I?",
    ),
    (  # travel guide
        "Travellers {where} should keep an eye out for {a}.",
        "Guides say {the} {is} best seen {act}.",
        "Bring a camera: {its_part} will look great in your photos.",
    ),
)

NAMES = (
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kofi",
    "Lena",
    "Omar",
)
SEASONS = ("spring", "summer", "autumn", "winter")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIELDS = ("where", "parts", "colours", "acts", "adjs")


@cache
def class_facts(word: str) -> dict:
    """Own facts first, then the shared facts of the class's groups (without repeats)."""
    groups, own = CLASS_FACTS[word]
    facts = {"kind": own.get("kind", GROUPS[groups[0]]["kind"]), "plural": own.get("plural", False)}
    for field in FIELDS:
        shared = [x for g in groups for x in GROUPS[g][field]]
        facts[field] = tuple(dict.fromkeys([*own.get(field, ()), *shared]))
        facts["own_" + field] = own.get(field, ())
        facts["shared_" + field] = tuple(x for x in facts[field] if x not in facts["own_" + field])
    facts["related"] = tuple(w for w in CLASS_NAMES if w != word and set(CLASS_FACTS[w][0]) & set(groups))
    return facts


# Paraphrases and related words: a text may speak of its class without its class word.
PARAPHRASES = {
    "man": ("gentleman", "fellow"), "boy": ("lad", "young fellow"), "house": ("home", "cottage"),
    "woman": ("lady", "mother"), "girl": ("young lady", "daughter"), "table": ("desk", "counter"),
    "road": ("street", "highway"), "horse": ("stallion", "pony"), "dog": ("puppy", "hound"),
    "ship": ("vessel", "sailboat"), "bird": ("sparrow", "songbird"), "mountain": ("peak", "summit"),
    "bed": ("mattress", "bunk"), "train": ("locomotive", "railway carriage"), "bridge": ("viaduct", "crossing"),
    "fish": ("minnow", "goldfish"), "cloud": ("mist", "thunderhead"), "chair": ("seat", "stool"),
    "cat": ("kitten", "tabby"), "baby": ("infant", "newborn"), "castle": ("fortress", "palace"),
    "forest": ("woods", "jungle"), "television": ("screen", "TV set"), "bear": ("grizzly", "cub"),
    "camel": ("dromedary", "beast of burden"), "sea": ("ocean", "waves"), "fox": ("vixen", "cub"),
    "plain": ("prairie", "grassland"), "bus": ("coach", "shuttle"), "snake": ("serpent", "viper"),
    "lamp": ("lantern", "light"), "clock": ("watch", "timepiece"), "lion": ("lioness", "king of beasts"),
    "tank": ("armoured vehicle", "war machine"), "palm": ("coconut tree", "tropical tree"),
    "rabbit": ("bunny", "hare"), "pine": ("conifer", "fir"), "cattle": ("cows", "herd"),
    "oak": ("acorn tree", "old tree"), "mouse": ("rodent", "little rat"), "frog": ("toad", "tadpole"),
    "ray": ("stingray", "manta"), "bicycle": ("bike", "cycle"), "truck": ("lorry", "van"),
    "elephant": ("pachyderm", "calf"), "roses": ("blossoms", "bouquet"), "wolf": ("pack hunter", "howler"),
    "telephone": ("phone", "receiver"), "bee": ("bumblebee", "insect"), "whale": ("humpback", "orca"),
}  # fmt: skip

# A short sentence naming another class, so that a class word in a text is evidence, not proof.
DISTRACTORS = (
    "Nearby was {a_other}.",
    "{name} had hoped to see {a_other}.",
    "Some mistake {them} for {a_other}.",
)
# A closing sentence listing some of the class's own parts and acts: how many grows with the text's specificity.
ASSOCIATION = "{It} always {makes} {name} think of {own}."

MENTION = 0.3  # the class word itself; otherwise a paraphrase (PARAPHRASE) or the kind ("this animal")
PARAPHRASE = 0.1
DISTRACTOR = 0.35  # a sentence names a related class

SPECIFICITY_POWER = 2.5  # specificity = uniform ** power: most texts vague, a few full of the class's own facts
ASSOCIATED = 4  # at most this many own facts in the closing sentence


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _listed(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _pick(facts: dict, field: str, specific: float, rng: np.random.Generator) -> list[str]:
    """Two details of `field`, different where the pool allows: each the class's own with p=`specific`, else one that
    its groups share with other classes."""
    picked = []
    for _ in range(2):
        pool = facts["own_" + field] if facts["own_" + field] and rng.random() < specific else facts["shared_" + field]
        pool = [x for x in pool if x not in picked] or pool
        picked.append(pool[int(rng.integers(len(pool)))])
    return picked


def _naming(word: str, rng: np.random.Generator, mention: float) -> tuple[str, str, str]:
    """(bare name, "the ..." phrase, "a ..." phrase) the text uses for its subject."""
    facts = class_facts(word)
    plural = facts["plural"]
    draw = rng.random()
    if draw < mention + PARAPHRASE:
        name = word if draw < mention else PARAPHRASES[word][int(rng.integers(len(PARAPHRASES[word])))]
        return name, "the " + name, name if plural else _article(name)
    name = facts["kind"]
    return name, ("these " if plural else "this ") + name, name if plural else _article(name)


def _fill(word: str, rng: np.random.Generator, mention: float) -> dict[str, str]:
    """The values of every template field for one text about `word`; "own" lists 0 to ASSOCIATED own facts."""
    facts = class_facts(word)
    plural = facts["plural"]
    name, the, a = _naming(word, rng, mention)
    specific = rng.random() ** SPECIFICITY_POWER
    where, parts, colours, acts, adjs = (_pick(facts, field, specific, rng) for field in FIELDS)
    own = [*facts["own_parts"], *facts["own_acts"]]
    own = [own[i] for i in rng.choice(len(own), min(int(rng.binomial(ASSOCIATED, specific)), len(own)), replace=False)]
    people = rng.choice(len(NAMES), 2, replace=False)
    other = facts["related"][int(rng.integers(len(facts["related"])))]
    return {
        "word": name, "the": the, "The": the[0].upper() + the[1:], "a": a, "A": a[0].upper() + a[1:],
        "it": "they" if plural else "it", "It": "They" if plural else "It",
        "them": "them" if plural else "it", "is": "are" if plural else "is",
        "was": "were" if plural else "was", "has": "have" if plural else "has",
        "makes": "make" if plural else "makes", "kind_a": facts["kind"] if plural else _article(facts["kind"]),
        "its_part": ("their " if plural else "its ") + parts[0].removeprefix("a ").removeprefix("an "),
        "where": where[0], "where2": where[1], "part": parts[0], "part2": parts[1],
        "colour": colours[0], "colour2": colours[1], "act": acts[0], "act2": acts[1],
        "adj": adjs[0], "adj2": adjs[1], "name": NAMES[people[0]], "name2": NAMES[people[1]],
        "season": SEASONS[int(rng.integers(4))], "day": DAYS[int(rng.integers(7))],
        "other": other, "a_other": other if class_facts(other)["plural"] else _article(other),
        "own": _listed(own) if own else "",
    }  # fmt: skip


def make_text(word: str, rng: np.random.Generator, mention: float = MENTION) -> str:
    """One text about `word`: 1-4 sentences, no tabs or newlines. It names the class with p=`mention`, else a
    paraphrase or its kind; its details are more or less specific to the class; some name a related class."""
    fill = _fill(word, rng, mention)
    style = STYLES[int(rng.integers(len(STYLES)))]
    closing = [DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]] if rng.random() < DISTRACTOR else []
    closing += [ASSOCIATION] if fill["own"] else []
    extra = int(rng.integers(min(3 - len(closing), len(style) - 1) + 1))
    chosen = [0, *sorted(1 + rng.choice(len(style) - 1, extra, replace=False))]
    sentences = [style[i].format(**fill) for i in chosen]
    sentences[-1] = sentences[-1][:-1] + "." if sentences[-1].endswith(",") else sentences[-1]  # a cut poem ends
    return " ".join(sentences + [sentence.format(**fill) for sentence in closing])
