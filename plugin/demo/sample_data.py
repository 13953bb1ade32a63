"""The raw material of the sample store: shoppers' names and Red Hill Fresh's shelves.

Prices are what a Mornington Peninsula grocer might charge, as exact decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

FIRST_NAMES = (
    "Olivia", "Charlotte", "Amelia", "Isla", "Mia", "Ava", "Grace", "Chloe", "Harper", "Sophie",
    "Zoe", "Ruby", "Matilda", "Lily", "Emily", "Ella", "Hannah", "Sienna", "Evie", "Lucy",
    "Priya", "Mei", "Aisha", "Sofia", "Maya", "Leila", "Anh", "Hana", "Rosa", "Niamh",
    "Oliver", "Jack", "William", "Noah", "Thomas", "Henry", "Lucas", "James", "Leo", "Charlie",
    "Ethan", "Archie", "Samuel", "Max", "Harrison", "Lachlan", "Cooper", "Hugo", "Finn", "Oscar",
    "Arjun", "Wei", "Omar", "Mateo", "Minh", "Kenji", "Luca", "Daniel", "Ben", "Patrick",
)

LAST_NAMES = (
    "Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Johnson", "White", "Martin", "Anderson",
    "Thompson", "Nguyen", "Thomas", "Walker", "Harris", "Lee", "Ryan", "Robinson", "Kelly", "King",
    "Davis", "Wright", "Evans", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke", "Patel",
    "Chen", "Wang", "Singh", "Tran", "Murphy", "O'Brien", "Mitchell", "Campbell", "Stewart", "Russo",
    "Papadopoulos", "Costa", "Kaur", "Le", "Huang", "Sullivan", "McDonald", "Fraser", "Bennett", "Hughes",
)

EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")


@dataclass(frozen=True)
class Product:
    id: int
    title: str
    price: Decimal
    max_quantity: int = 1


def _p(number: int, title: str, price: str, max_quantity: int = 1) -> Product:
    return Product(8_120_000_000 + number, title, Decimal(price), max_quantity)


VEG_BOX = _p(1, "Seasonal veg box", "39.00")
FRUIT_BOX = _p(2, "Red Hill fruit box", "34.00")

STAPLES = (
    _p(10, "Organic sourdough loaf", "8.50", 2),
    _p(11, "Free-range eggs (dozen)", "7.90", 2),
    _p(12, "Full-cream milk 2L", "4.20", 3),
    _p(13, "Greek yoghurt 1kg", "7.50"),
    _p(14, "Bananas 1kg", "4.50", 2),
    _p(15, "Pink Lady apples 1kg", "5.90", 2),
    _p(16, "Baby spinach 120g", "3.50", 2),
    _p(17, "Carrots 1kg", "3.20"),
    _p(18, "Potatoes 2kg", "6.50"),
    _p(19, "Brown onions 1kg", "3.00"),
    _p(20, "Hass avocados (3)", "5.40", 2),
    _p(21, "Heirloom tomatoes 500g", "6.80"),
    _p(22, "Aged cheddar 250g", "9.80"),
    _p(23, "Rolled oats 1kg", "5.90"),
    _p(24, "Fresh herb bunch", "3.50", 2),
    _p(25, "Garlic bulbs (3)", "2.90"),
)

TREATS = (
    _p(40, "Free-range chicken thighs 1kg", "16.90"),
    _p(41, "Grass-fed beef mince 500g", "11.50", 2),
    _p(42, "Pasture-raised pork sausages 500g", "13.50"),
    _p(43, "Tasmanian smoked salmon 200g", "12.90"),
    _p(44, "Peninsula honey 500g", "14.00"),
    _p(45, "Cold-pressed orange juice 1L", "8.90"),
    _p(46, "Single-origin coffee beans 500g", "22.00"),
    _p(47, "Extra virgin olive oil 750ml", "18.50"),
    _p(48, "Local pinot noir 750ml", "32.00"),
    _p(49, "Seasonal flower bunch", "20.00"),
    _p(50, "Dark chocolate 180g", "6.50", 2),
    _p(51, "Marinated olives 300g", "9.00"),
)

# What only turns up in its season (Southern Hemisphere months).
SEASONAL: dict[int, tuple[Product, ...]] = {
    12: (_p(70, "Red Hill cherries 500g", "14.50", 2), _p(71, "Glazed ham (half)", "59.00")),
    1: (_p(70, "Red Hill cherries 500g", "14.50", 2), _p(72, "Mornington strawberries 250g", "6.00", 2)),
    2: (_p(72, "Mornington strawberries 250g", "6.00", 2), _p(73, "Sweet corn (4 cobs)", "5.00")),
    3: (_p(74, "Apricots 500g", "7.50"),),
    4: (_p(75, "Hot cross buns (6)", "9.50", 2),),
    6: (_p(76, "Soup pack: leek, celery, parsnip", "12.00"),),
    7: (_p(76, "Soup pack: leek, celery, parsnip", "12.00"), _p(77, "Blood oranges 1kg", "7.90")),
    9: (_p(78, "Asparagus bunch", "4.50", 2),),
    10: (_p(78, "Asparagus bunch", "4.50", 2),),
    11: (_p(72, "Mornington strawberries 250g", "6.00", 2),),
}
