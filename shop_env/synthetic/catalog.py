"""The simulated shop's product catalog, generated deterministically from word lists.

One catalog per seed: :func:`build_catalog` is cached, so every session of a run sees the
same shop. Titles are unique, so element names derived from them are unique on a page.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

from shop_env.webpage.prune import slugify


@dataclass(frozen=True)
class CategorySpec:
    """Word lists that define one product category.

    Attributes:
        key: machine name (``tents``).
        label: display name (``Tents``).
        nouns: product nouns used in titles; the first is the canonical one.
        synonyms: other words shoppers use for the category (query reformulation).
        models: model-name words for titles.
        brands: brand names.
        colours: colour options.
        sizes: size options (empty: the category has no sizes).
        price_range: (low, high) list price in dollars.
        features: product features used in descriptions, queries and review searches.
    """

    key: str
    label: str
    nouns: tuple[str, ...]
    synonyms: tuple[str, ...]
    models: tuple[str, ...]
    brands: tuple[str, ...]
    colours: tuple[str, ...]
    sizes: tuple[str, ...]
    price_range: tuple[float, float]
    features: tuple[str, ...]


CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec(
        "tents", "Tents", ("Dome Tent", "Backpacking Tent", "Tunnel Tent", "Pop-Up Tent"),
        ("tent", "camping tent", "shelter"),
        ("Alpine", "Ridge", "Summit", "Trailhead", "Basecamp", "Cascade", "Timber", "Granite"),
        ("NorthPeak", "Campora", "TrailForge", "Wildbound", "Outvale"),
        ("Green", "Orange", "Grey", "Blue", "Sand"), ("1-Person", "2-Person", "4-Person", "6-Person"),
        (49.0, 420.0), ("waterproof", "lightweight", "easy setup", "ventilation", "rainfly", "packable"),
    ),
    CategorySpec(
        "backpacks", "Backpacks", ("Hiking Backpack", "Daypack", "Travel Pack", "Trekking Pack"),
        ("backpack", "rucksack", "hiking bag"),
        ("Voyager", "Nomad", "Ranger", "Drift", "Horizon", "Venture", "Crest", "Pioneer"),
        ("Packwell", "TrailForge", "Osprey Ridge", "Carrymore", "Outvale"),
        ("Black", "Navy", "Olive", "Red", "Grey"), ("20L", "30L", "45L", "65L"),
        (29.0, 260.0), ("hip belt", "rain cover", "laptop sleeve", "hydration port", "padded straps",
                        "lightweight"),
    ),
    CategorySpec(
        "running_shoes", "Running Shoes", ("Running Shoe", "Trail Runner", "Road Runner", "Racing Flat"),
        ("running shoes", "sneakers", "trainers", "jogging shoes"),
        ("Swift", "Pulse", "Stride", "Glide", "Tempo", "Surge", "Flux", "Aero"),
        ("Fleetfoot", "Runnex", "Strider", "Kinetic", "Paceline"),
        ("Black", "White", "Blue", "Pink", "Neon Yellow"), ("7", "8", "9", "10", "11", "12"),
        (39.0, 210.0), ("cushioning", "breathable", "wide fit", "arch support", "grip", "lightweight"),
    ),
    CategorySpec(
        "headphones", "Headphones", ("Wireless Headphones", "Earbuds", "Over-Ear Headphones",
                                     "Noise Cancelling Headphones"),
        ("headphones", "earphones", "headset", "earbuds"),
        ("Echo", "Bass", "Studio", "Wave", "Sonic", "Pulse", "Quiet", "Aura"),
        ("Soundly", "Auralix", "BeatHaus", "Nexa", "Tonic"),
        ("Black", "White", "Silver", "Blue", "Rose Gold"), (),
        (19.0, 380.0), ("battery life", "noise cancelling", "bluetooth", "comfort", "microphone",
                        "bass"),
    ),
    CategorySpec(
        "coffee_makers", "Coffee Makers", ("Drip Coffee Maker", "Espresso Machine", "Pour-Over Set",
                                           "Cold Brew Maker"),
        ("coffee maker", "coffee machine", "espresso maker", "brewer"),
        ("Barista", "Morning", "Roast", "Crema", "Brew", "Daily", "Aroma", "Mocha"),
        ("Kaffeo", "BrewMaster", "Beanly", "Cuppa", "Hearth"),
        ("Black", "Stainless", "Red", "White", "Copper"), ("4-Cup", "8-Cup", "12-Cup"),
        (24.0, 640.0), ("programmable", "thermal carafe", "milk frother", "easy to clean",
                        "grinder", "fast brew"),
    ),
    CategorySpec(
        "yoga_mats", "Yoga Mats", ("Yoga Mat", "Exercise Mat", "Travel Yoga Mat", "Cork Yoga Mat"),
        ("yoga mat", "exercise mat", "workout mat", "pilates mat"),
        ("Lotus", "Zen", "Flow", "Balance", "Harmony", "Sol", "Prana", "Calm"),
        ("Mantra", "FlexiFit", "Asana Co", "Groundwell", "Stretchly"),
        ("Purple", "Teal", "Black", "Pink", "Grey"), ("4mm", "6mm", "8mm"),
        (15.0, 140.0), ("non-slip", "extra thick", "eco friendly", "carrying strap", "easy to clean",
                        "lightweight"),
    ),
    CategorySpec(
        "desk_lamps", "Desk Lamps", ("LED Desk Lamp", "Architect Lamp", "Clamp Lamp", "Reading Lamp"),
        ("desk lamp", "table lamp", "reading light", "task lamp"),
        ("Lumen", "Beam", "Halo", "Glow", "Orbit", "Arc", "Nova", "Spark"),
        ("Brightway", "Luxora", "Lampix", "Ember", "Studio Nine"),
        ("Black", "White", "Brass", "Silver", "Wood"), (),
        (18.0, 190.0), ("dimmable", "usb charging", "adjustable arm", "eye care", "color temperature",
                        "touch control"),
    ),
    CategorySpec(
        "water_bottles", "Water Bottles", ("Insulated Water Bottle", "Sports Bottle", "Glass Bottle",
                                           "Filter Bottle"),
        ("water bottle", "drink bottle", "flask", "tumbler"),
        ("Hydro", "Aqua", "Glacier", "Stream", "Spring", "Tide", "Rapid", "Frost"),
        ("Hydrate Co", "Sipwell", "Aquaforge", "Chillr", "Flowbottle"),
        ("Black", "Blue", "Green", "White", "Coral"), ("500ml", "750ml", "1L"),
        (9.0, 60.0), ("leak proof", "insulated", "dishwasher safe", "bpa free", "straw lid",
                      "keeps cold"),
    ),
    CategorySpec(
        "tshirts", "T-Shirts", ("Cotton T-Shirt", "Performance Tee", "Graphic Tee", "V-Neck Tee"),
        ("t-shirt", "tee", "tshirt", "shirt"),
        ("Classic", "Everyday", "Essential", "Vintage", "Active", "Urban", "Coast", "Weekend"),
        ("Threadline", "Cottonly", "Basics Lab", "Loomwear", "Northstitch"),
        ("White", "Black", "Heather Grey", "Navy", "Olive"), ("S", "M", "L", "XL", "XXL"),
        (8.0, 55.0), ("organic cotton", "slim fit", "moisture wicking", "soft", "relaxed fit",
                      "pre-shrunk"),
    ),
    CategorySpec(
        "phone_cases", "Phone Cases", ("Phone Case", "Wallet Case", "Rugged Case", "Clear Case"),
        ("phone case", "phone cover", "iphone case", "protective case"),
        ("Shield", "Armor", "Guard", "Slim", "Crystal", "Defender", "Grip", "Edge"),
        ("Casely", "ArmorLab", "Pocketly", "Tough Co", "Clearview"),
        ("Black", "Clear", "Blue", "Red", "Purple"), ("Phone 13", "Phone 14", "Phone 15", "Phone 15 Pro"),
        (7.0, 70.0), ("drop protection", "magsafe", "card slot", "slim", "shockproof", "grip"),
    ),
)

CATEGORY_BY_KEY: dict[str, CategorySpec] = {spec.key: spec for spec in CATEGORIES}



@dataclass(frozen=True)
class Product:
    """One product of the catalog."""

    product_id: str
    category: str
    title: str
    brand: str
    noun: str
    colours: tuple[str, ...]
    sizes: tuple[str, ...]
    price: float
    rating: float
    review_count: int
    description: str
    features: tuple[str, ...]
    slug: str = field(default="")  # the pruner's slug of the title: the card's section name


@dataclass
class Catalog:
    """All products, with lookups by id and by category."""

    products: list[Product]
    by_id: dict[str, Product]
    by_category: dict[str, list[Product]]

    def __len__(self) -> int:
        return len(self.products)


def _make_product(spec: CategorySpec, index: int, rng: random.Random, taken: set[str]) -> Product:
    for _ in range(200):
        model = rng.choice(spec.models)
        noun = rng.choice(spec.nouns)
        brand = rng.choice(spec.brands)
        extra = rng.choice(("", "", "Pro", "Lite", "Plus", "Max", "2", "3", "X", "Ultra", "Mini", "Go"))
        title = " ".join(part for part in (brand, model, extra, noun) if part)
        if title not in taken:
            break
    else:  # word lists exhausted: disambiguate with a model number
        title = f"{brand} {model} {index} {noun}"
    taken.add(title)
    n_colours = rng.randint(2, min(4, len(spec.colours)))
    colours = tuple(rng.sample(spec.colours, n_colours))
    sizes = tuple(s for s in spec.sizes if rng.random() < 0.8) if spec.sizes else ()
    if spec.sizes and not sizes:
        sizes = (rng.choice(spec.sizes),)
    low, high = spec.price_range
    # Log-uniform prices: most products are cheap, a few are premium.
    price = round(low * (high / low) ** rng.random(), 0) - 0.01
    rating = round(min(5.0, max(2.5, rng.gauss(4.2, 0.45))), 1)
    review_count = int(10 ** rng.uniform(0.5, 4.3))
    features = tuple(rng.sample(spec.features, 3))
    description = (
        f"The {title} is built for everyday use, with {features[0]}, "
        f"{features[1]} and {features[2]}. Available in {', '.join(colours).lower()}."
    )
    return Product(
        product_id=f"P{index:05d}",
        category=spec.key,
        title=title,
        brand=brand,
        noun=noun,
        colours=colours,
        sizes=sizes,
        price=price,
        rating=rating,
        review_count=review_count,
        description=description,
        features=features,
        slug=slugify(title),
    )


@lru_cache(maxsize=4)
def build_catalog(seed: int = 0, per_category: int = 60) -> Catalog:
    """Generate the shop's catalog.

    Args:
        seed: the catalog seed (same seed, same catalog).
        per_category: products per category (10 categories).

    Returns:
        A :class:`Catalog` with ``10 * per_category`` products with unique titles.

    Raises:
        ValueError: ``per_category`` is below 1.
    """
    if per_category < 1:
        raise ValueError(f"per_category must be >= 1, got {per_category}")
    rng = random.Random(f"catalog-{seed}")
    products: list[Product] = []
    taken: set[str] = set()
    by_category: dict[str, list[Product]] = {}
    for spec in CATEGORIES:
        items = [_make_product(spec, len(products) + i, rng, taken) for i in range(per_category)]
        by_category[spec.key] = items
        products.extend(items)
    return Catalog(products, {p.product_id: p for p in products}, by_category)
