"""Demo catalogues for `manage.py seed`: two stores that look like real shops.

Each product: (sku, name, price, initial stock, low-stock threshold, lead time in days or None,
description). A few start at or under their threshold so the alerts and the low-stock views have
something to show on a fresh install.
"""

# ruff: noqa: E501  (one product per line reads better than wrapped calls)
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    price: Decimal
    stock: int
    threshold: int
    lead_time_days: int | None
    description: str


@dataclass(frozen=True)
class DemoStore:
    slug: str
    name: str
    currency: str
    products: tuple[DemoProduct, ...]


def _p(sku, name, price, stock, threshold, lead, description) -> DemoProduct:
    return DemoProduct(sku, name, Decimal(price), stock, threshold, lead, description)


# fmt: off
BOOKS = DemoStore(
    slug="demo-books",
    name="Paper & Ink Books",
    currency="EUR",
    products=(
        _p("BK-ORWELL-1984", "Nineteen Eighty-Four (paperback)", "10.99", 120, 15, 5, "George Orwell, Penguin Modern Classics."),
        _p("BK-AUSTEN-PP", "Pride and Prejudice (clothbound)", "14.50", 60, 10, 7, "Jane Austen, clothbound classics edition."),
        _p("BK-TOLKIEN-HOB", "The Hobbit (illustrated)", "24.90", 45, 8, 10, "J.R.R. Tolkien, illustrated by Alan Lee."),
        _p("BK-HERBERT-DUNE", "Dune", "12.99", 90, 12, 5, "Frank Herbert. The 1965 science-fiction classic."),
        _p("BK-LEGUIN-EARTH", "A Wizard of Earthsea", "9.99", 40, 8, 7, "Ursula K. Le Guin, first of the Earthsea cycle."),
        _p("BK-ATWOOD-HMT", "The Handmaid's Tale", "11.50", 70, 10, 5, "Margaret Atwood, Vintage paperback."),
        _p("BK-MORRISON-BEL", "Beloved", "11.99", 4, 6, 7, "Toni Morrison, Pulitzer Prize winner."),
        _p("BK-ISHIGURO-RD", "The Remains of the Day", "10.50", 35, 6, 7, "Kazuo Ishiguro, Faber paperback."),
        _p("BK-MARQUEZ-100", "One Hundred Years of Solitude", "13.99", 50, 8, 10, "Gabriel García Márquez."),
        _p("BK-KAFKA-TRIAL", "The Trial", "8.99", 25, 5, 10, "Franz Kafka, new translation."),
        _p("BK-WOOLF-LIGHT", "To the Lighthouse", "9.50", 2, 5, 7, "Virginia Woolf, Oxford World's Classics."),
        _p("BK-HARARI-SAP", "Sapiens: A Brief History of Humankind", "16.99", 110, 15, 5, "Yuval Noah Harari."),
        _p("BK-KAHNEMAN-TFS", "Thinking, Fast and Slow", "15.99", 65, 10, 5, "Daniel Kahneman."),
        _p("BK-SAGAN-COSMOS", "Cosmos", "17.50", 30, 6, 10, "Carl Sagan, anniversary edition."),
        _p("BK-HAWKING-BHT", "A Brief History of Time", "12.50", 55, 8, 7, "Stephen Hawking."),
        _p("BK-KNUTH-TAOCP1", "The Art of Computer Programming, Vol. 1", "79.00", 6, 3, 21, "Donald E. Knuth, 3rd edition, hardcover."),
        _p("BK-SICP", "Structure and Interpretation of Computer Programs", "54.00", 12, 4, 14, "Abelson & Sussman, 2nd edition."),
        _p("BK-DDIA", "Designing Data-Intensive Applications", "44.90", 28, 6, 14, "Martin Kleppmann, O'Reilly."),
        _p("BK-PRAGPROG", "The Pragmatic Programmer (20th anniv.)", "39.90", 22, 5, 14, "Hunt & Thomas."),
        _p("BK-CLRS", "Introduction to Algorithms", "98.00", 0, 3, 21, "Cormen, Leiserson, Rivest, Stein. 4th edition."),
        _p("BK-OTTOLENGHI-S", "Simple — Ottolenghi", "29.99", 24, 5, 10, "Yotam Ottolenghi's everyday cookbook."),
        _p("BK-SALT-FAT", "Salt, Fat, Acid, Heat", "27.50", 18, 5, 10, "Samin Nosrat, illustrated cookbook."),
        _p("BK-GRUFFALO", "The Gruffalo (board book)", "7.99", 80, 12, 5, "Julia Donaldson & Axel Scheffler."),
        _p("BK-HUNGRY-CAT", "The Very Hungry Caterpillar", "8.50", 75, 12, 5, "Eric Carle, board book."),
        _p("BK-MOOMIN-1", "Finn Family Moomintroll", "8.99", 3, 5, 14, "Tove Jansson, Puffin paperback."),
        _p("BK-ATLAS-WORLD", "The Times Atlas of the World (concise)", "65.00", 8, 2, 21, "Concise edition, hardcover."),
        _p("BK-OXFORD-DICT", "Oxford English Dictionary (concise)", "32.00", 15, 4, 14, "12th edition."),
        _p("BK-HAIKU-BASHO", "The Narrow Road to the Deep North", "9.99", 20, 4, 14, "Matsuo Bashō, Penguin Classics."),
        _p("BK-RILKE-LETTERS", "Letters to a Young Poet", "7.50", 33, 5, 10, "Rainer Maria Rilke."),
        _p("BK-MAUS", "Maus: A Survivor's Tale (complete)", "24.99", 19, 4, 10, "Art Spiegelman, graphic novel."),
        _p("BK-PERSEPOLIS", "Persepolis (complete)", "21.99", 21, 4, 10, "Marjane Satrapi, graphic memoir."),
        _p("ACC-BOOKMARK-LTH", "Leather bookmark", "6.90", 150, 20, 7, "Hand-stitched vegetable-tanned leather."),
        _p("ACC-TOTE-CANVAS", "Paper & Ink canvas tote bag", "14.00", 40, 8, 14, "Heavy cotton canvas, printed logo."),
        _p("ACC-GIFTCARD-25", "Gift card 25 EUR", "25.00", 500, 20, None, "Printed gift card, valid 3 years."),
    ),
)

OUTDOOR = DemoStore(
    slug="demo-outdoor",
    name="Northwind Outdoor",
    currency="EUR",
    products=(
        _p("TENT-2P-ULTRA", "Ultralight 2-person tent", "329.00", 14, 4, 21, "1.4 kg, double wall, 3-season."),
        _p("TENT-4P-FAMILY", "Family tunnel tent, 4 persons", "449.00", 6, 2, 28, "Two bedrooms, large porch."),
        _p("BAG-DOWN-M10", "Down sleeping bag, comfort −10 °C", "289.00", 18, 4, 21, "800 fill power, 1.1 kg."),
        _p("BAG-SYN-P5", "Synthetic sleeping bag, comfort +5 °C", "89.00", 35, 6, 14, "Machine washable, compressible."),
        _p("MAT-AIR-R4", "Insulated air mat, R-value 4.2", "139.00", 26, 5, 14, "Regular size, 460 g."),
        _p("MAT-FOAM-ZZ", "Closed-cell foam mat", "39.90", 40, 8, 10, "Folding, never punctures."),
        _p("PACK-38L-HIKE", "Hiking backpack 38 L", "159.00", 22, 5, 21, "Ventilated back system, rain cover."),
        _p("PACK-65L-TREK", "Trekking backpack 65+10 L", "239.00", 9, 3, 28, "Adjustable back length, hip-belt pockets."),
        _p("PACK-20L-DAY", "Daypack 20 L", "69.00", 48, 8, 14, "Hydration compatible."),
        _p("JKT-SHELL-M", "Waterproof shell jacket, men's M", "249.00", 12, 4, 21, "3-layer membrane, 20k/20k."),
        _p("JKT-SHELL-W", "Waterproof shell jacket, women's M", "249.00", 3, 4, 21, "3-layer membrane, 20k/20k."),
        _p("JKT-DOWN-L", "Down jacket, unisex L", "199.00", 16, 4, 21, "Packable, 700 fill power."),
        _p("FLEECE-200-M", "Fleece mid-layer 200, M", "79.00", 30, 6, 14, "Recycled polyester."),
        _p("BASE-MERINO-M", "Merino base layer top, M", "69.00", 44, 8, 14, "200 g/m² merino wool."),
        _p("BOOT-HIKE-42", "Leather hiking boots, EU 42", "189.00", 8, 3, 28, "Gore-Tex lining, Vibram sole."),
        _p("BOOT-HIKE-44", "Leather hiking boots, EU 44", "189.00", 2, 3, 28, "Gore-Tex lining, Vibram sole."),
        _p("SHOE-TRAIL-43", "Trail running shoes, EU 43", "139.00", 20, 4, 21, "8 mm drop, aggressive lugs."),
        _p("SOCK-HIKE-3P", "Hiking socks, 3-pack", "29.90", 120, 20, 10, "Merino blend, cushioned."),
        _p("POLE-CARBON", "Carbon trekking poles (pair)", "119.00", 17, 4, 21, "Foldable, 380 g per pair."),
        _p("STOVE-GAS-MINI", "Mini gas stove", "49.90", 38, 6, 14, "Piezo ignition, 2.6 kW."),
        _p("GAS-230G", "Gas cartridge 230 g", "6.90", 200, 40, 7, "Butane/propane mix."),
        _p("POT-TI-750", "Titanium pot 750 ml", "44.00", 25, 5, 14, "With lid and handle."),
        _p("FILTER-SQUEEZE", "Squeeze water filter", "39.00", 33, 6, 14, "0.1 micron hollow fibre."),
        _p("BOTTLE-1L-STEEL", "Insulated steel bottle 1 L", "34.90", 60, 10, 14, "Keeps cold 24 h / hot 12 h."),
        _p("LAMP-HEAD-400", "Headlamp 400 lm, rechargeable", "54.90", 41, 8, 14, "USB-C, red light mode."),
        _p("LAMP-LANTERN", "Camping lantern", "29.90", 5, 6, 14, "LED, 3 brightness levels, hook."),
        _p("KNIFE-FOLD", "Folding knife, stainless", "34.00", 28, 5, 21, "Locking blade, 8.5 cm."),
        _p("FIRST-AID-TREK", "Trekking first-aid kit", "32.50", 36, 6, 10, "Waterproof pouch, 60 items."),
        _p("MAP-COMPASS", "Baseplate compass", "27.90", 24, 5, 14, "Declination adjustment, mirror."),
        _p("HAMMOCK-SGL", "Hammock with tree straps", "59.00", 15, 4, 21, "Parachute nylon, 150 kg."),
        _p("TARP-3X3", "Tarp 3 × 3 m", "79.00", 11, 3, 21, "Silnylon, 8 tie-outs."),
        _p("CHAIR-FOLD-LITE", "Lightweight folding chair", "89.00", 0, 3, 28, "Aluminium frame, 950 g."),
        _p("SUNSCR-SPF50", "Sunscreen SPF 50, 100 ml", "14.90", 90, 15, 7, "Water resistant, reef-safe."),
        _p("REPEL-INSECT", "Insect repellent, 75 ml", "11.90", 70, 12, 7, "Icaridin 20 %."),
    ),
)
# fmt: on

DEMO_STORES: tuple[DemoStore, ...] = (BOOKS, OUTDOOR)
