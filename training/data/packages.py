"""Which Debian packages and photos the clean-photo corpus uses: pure data, no I/O.

:data:`PACKAGES` is the training corpus, :data:`CALIBRATION_PACKAGES` the lite reasoner's threshold
calibration photos, :data:`WIDE_PACKAGES` and :data:`WIDE2_PACKAGES` (from Debian trixie) more training
photos (:data:`PACKAGE_SETS` names them for
``python -m training.data.corpus --set``); :data:`EXCLUDE` and :data:`INCLUDE` are the hand review of
what the photo statistics decide; :data:`SAMPLES` are the photos shipped in ``rnr/assets/samples``.
:mod:`training.data.corpus` fetches, filters and writes them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PackageSpec:
    """A Debian package to search and the glob patterns (under its root) of its images.

    ``rcc``: Qt resource files (under the root) to unpack first, each into ``<file>.d/`` (so a
    pattern can reach ``usr/share/x.rcc.d/<resource path>``); ``min_short``: smallest short side,
    pixels, of a kept image.
    """

    name: str
    patterns: tuple[str, ...]
    rcc: tuple[str, ...] = ()
    min_short: int = 0
    suite: str = ""
    """Debian suite to fetch from when it is not the machine's own (``""``: ``apt-get download``)."""


PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec("gnome-backgrounds", ("usr/share/backgrounds/gnome/*",)),
    PackageSpec("lomiri-wallpapers-16.04", ("usr/share/backgrounds/*",)),
    PackageSpec("lomiri-wallpapers-20.04", ("usr/share/backgrounds/*",)),
    PackageSpec("mate-backgrounds", ("usr/share/backgrounds/mate/*/*",)),
    PackageSpec("plasma-workspace-wallpapers", ("usr/share/wallpapers/*/contents/images*/*",)),
    PackageSpec(
        "python3-skimage",
        tuple(
            f"usr/lib/python3/dist-packages/skimage/data/{n}"
            for n in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
        ),
    ),
    PackageSpec("ukui-wallpapers", ("usr/share/backgrounds/*",)),
)

# Photos kept apart from the training corpus: a calibration split for the lite reasoner's thresholds.
# A separate set (not added to PACKAGES) so that the training corpus, its packed crops and its
# held-out split stay exactly as they were. Searched and found without clean photographs:
# desktop-base, lomiri-wallpapers, sway-backgrounds, xfdesktop4-data, lxde-common,
# cinnamon-desktop-data, digikam-data (renders, logos, textures); budgie-backgrounds is not in bookworm.
CALIBRATION_PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec("palapeli-data", ("usr/share/palapeli/collection/*",)),
)

# More training photos, packed together with the training corpus (``python -m training.data.corpus pack
# --src data/corpus data/corpus_wide --format jpeg``); a separate set so that the training corpus, its
# packed crops and its held-out split stay exactly as they were (all of these photos are for training).
# Searched as well and left out: opencv-doc's sample photos (examples/data: the Debian copyright file
# matches them only through the Haar-cascade paragraph, so author and licence would be guessed),
# python-matplotlib-data (grace_hopper.jpg: the copyright file states no licence for it),
# stellarium-data and kstars-data (sky/landscape tiles with transparent skies, astronomy images),
# tuxtype-data (astronomy), gimp-help-en, kalzium-data, marble-data, hugin-data (screenshots, processed
# tutorial images), krita-data (textures), tuxpaint-stamps-default (cut-outs),
# jigzo-data (no photos of 400+ px).
_GCOMPRIS_PHOTOS = ("erase", "explore_farm_animals", "explore_monuments", "explore_world_animals")
WIDE_PACKAGES: tuple[PackageSpec, ...] = (
    # GCompris keeps its photos (Wikimedia Commons, credited per file in a README) inside Qt resources.
    PackageSpec(
        "gcompris-qt-data",
        tuple(f"usr/share/gcompris-qt/rcc/{a}.rcc.d/gcompris/src/activities/{a}/resource/**/*.webp"
              for a in _GCOMPRIS_PHOTOS),
        rcc=tuple(f"usr/share/gcompris-qt/rcc/{a}.rcc" for a in _GCOMPRIS_PHOTOS),
        min_short=400,
    ),
    PackageSpec("kphotoalbum", ("usr/share/kphotoalbum/demo/*.jpg",)),
    PackageSpec(
        "python3-sklearn",
        tuple(f"usr/lib/python3/dist-packages/sklearn/datasets/images/{n}" for n in ("china.jpg", "flower.jpg")),
    ),
    PackageSpec("tuxpaint-data", ("usr/share/tuxpaint/templates/*",)),
)

# A second batch of training photos from the next Debian release (trixie), whose packages this
# bookworm machine's apt does not list: fetched from the archive's signed index
# (:func:`training.data.corpus.download_debs`). Architecture, city and wildlife with defocused
# backgrounds, which the first sets have few of. Also searched in trixie: plasma-workspace-wallpapers
# 6.3 (the bookworm set plus three renders), gnome-backgrounds 48 and breeze-wallpaper (renders).
WIDE2_PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec("budgie-backgrounds", ("usr/share/backgrounds/budgie/*",), suite="trixie"),
)

PACKAGE_SETS: dict[str, tuple[PackageSpec, ...]] = {
    "train": PACKAGES, "calibration": CALIBRATION_PACKAGES, "wide": WIDE_PACKAGES, "wide2": WIDE2_PACKAGES,
}

# Hand-reviewed on a contact sheet of every candidate: images the statistics let through that
# are not clean photographs. Key: the candidate id; value: why it is out.
EXCLUDE: dict[str, str] = {
    "gnome-backgrounds/grid-d": "rendered pattern",
    "gnome-backgrounds/grid-l": "rendered pattern",
    "gnome-backgrounds/licorice-d": "rendered pattern",
    "gnome-backgrounds/licorice-l": "rendered pattern",
    "gnome-backgrounds/wood-d": "rendered stripes",
    "gnome-backgrounds/wood-l": "rendered stripes",
    "lomiri-wallpapers-16.04/analogpattern_by_Peter_Nerlich": "abstract colour blur",
    "lomiri-wallpapers-20.04/Infinite-Sea_by_Aury88": "composite digital art",
    "lomiri-wallpapers-20.04/Painting-Colors_by__herobrine7gamer": "painting",
    "mate-backgrounds/Elephants": "digital art",
    "mate-backgrounds/Float-into-MATE": "digital art",
    "mate-backgrounds/Storm": "foreground motion-blurred (shot from a moving vehicle)",
    "mate-backgrounds/Ubuntu-Mate-Cold-no-logo": "abstract blur",
    "mate-backgrounds/Ubuntu-Mate-Dark-no-logo": "abstract blur",
    "mate-backgrounds/Ubuntu-Mate-Radioactive-no-logo": "abstract blur",
    "mate-backgrounds/Ubuntu-Mate-Warm-no-logo": "abstract blur",
    "plasma-workspace-wallpapers/Autumn": "digital painting",
    "plasma-workspace-wallpapers/Canopee": "vector art",
    "plasma-workspace-wallpapers/ColdRipple": "dense fog: would teach haze as clean",
    "plasma-workspace-wallpapers/DarkestHour": "night fog: would teach haze as clean",
    "plasma-workspace-wallpapers/Honeywave": "vector art",
    "plasma-workspace-wallpapers/Kay": "vector art",
    "plasma-workspace-wallpapers/Opal": "vector art",
    "plasma-workspace-wallpapers/Patak": "vector art",
    "plasma-workspace-wallpapers/Patak-dark": "vector art",
    "plasma-workspace-wallpapers/SafeLanding": "illustration",
    "plasma-workspace-wallpapers/Shell": "vector art",
    "plasma-workspace-wallpapers/Volna": "3-D render",
    "plasma-workspace-wallpapers/summer_1am": "low-contrast dusk mist: would teach haze as clean",
    "ukui-wallpapers/2004default": "vector art",
    "ukui-wallpapers/rhythm": "vector art",
    "ukui-wallpapers/string": "3-D render",
    "gcompris-qt-data/erase-bee": "mostly defocused background",
    "gcompris-qt-data/explore_monuments-castleClinton": "black-and-white photograph",
    "kphotoalbum/bar55": "dark flash shot, noisy shadows",
    "kphotoalbum/bar55_2": "dark flash shot, noisy shadows",
    "kphotoalbum/blackie": "shot through aquarium glass, blurred",
    "kphotoalbum/jesper": "out-of-focus close-up",
    "kphotoalbum/new_wave_1": "underexposed",
    "kphotoalbum/pool_2": "underexposed",
    "tuxpaint-data/spiders_web": "mostly defocused background",
    "tuxpaint-data/sun_behind_leaves": "mostly defocused background",
    "budgie-backgrounds/abstract-spiral": "black-and-white photograph",
    "budgie-backgrounds/beacon-street-sunset": "sun glare and haze over the street: would teach haze as clean",
    "budgie-backgrounds/ocean-waves": "painting",
    "budgie-backgrounds/saturnian-profile": "space probe image, mostly black",
    "budgie-backgrounds/tea-gardens": "mist over the hills: would teach haze as clean",
    "budgie-backgrounds/valley-midnight": "vector art",
    "budgie-backgrounds/waves-midnight": "vector art",
}

# Hand-reviewed real photographs that the statistics reject (smooth studio/bokeh backgrounds).
INCLUDE: frozenset[str] = frozenset({
    "lomiri-wallpapers-16.04/free_by_Peter_Nerlich",
    "budgie-backgrounds/extreme-desert-hike",
    "budgie-backgrounds/piazza-gae-aulenti",
})


# The photos shipped with the pack for ``rnr demo`` and the example workflows: file stem -> corpus id.
SAMPLES: dict[str, str] = {
    "landscape": "lomiri-wallpapers-16.04/picosdeeuropa_by_Aitzol_Berasategi",
    "building": "plasma-workspace-wallpapers/Grey",
    "foliage": "lomiri-wallpapers-16.04/life_by_Aitzol_Berasategi",
}
