"""The lab's data: items, customers and orders, sized and seeded by ``seed_lab``."""
