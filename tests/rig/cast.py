"""The fixed cast every test can name: villages and residents, keyed by name."""

VILLAGES = {"north": "Nord", "south": "Sud", "east": "Est"}

# resident name -> (home village, display name)
RESIDENTS = {
    "alder": ("north", "Alder Aulne"),
    "birch": ("north", "Birch Bouleau"),
    "cedar": ("south", "Cedar Cèdre"),
    "dogwood": ("east", "Dogwood Cornouiller"),
}

PASSWORD = "correct horse battery staple"
