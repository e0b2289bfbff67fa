"""Printable letters for household codes: one A4 page per household, to be sent by post.

Each page carries the commune (instance) name, the village, the code in large letters, a QR code of the
registration page with the code filled in, and short instructions in the instance's languages. The
PDF uses the core fonts (no font file to ship), which only know Windows-1252 (Latin-1 plus a few signs
such as the euro and typographic quotes); other characters fall back to their unaccented letter or `?`.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import segno
from fpdf import FPDF

from ..settings import Settings
from .villages import IssuedCode

PDF_ENCODING = "windows-1252"
LANGUAGE_ORDER = ("fr", "nl", "de", "en")

HEADINGS = {
    "fr": "Votre code de ménage",
    "nl": "Uw gezinscode",
    "de": "Ihr Haushaltscode",
    "en": "Your household code",
}

INSTRUCTIONS = {
    "fr": ("Inscrivez-vous sur {name}, le réseau de voisinage de votre commune : scannez le code QR "
           "ou ouvrez {url}/register et tapez ce code. Nombre de comptes possibles pour votre ménage : "
           "{uses}. Ne partagez pas ce code en dehors de votre ménage."),
    "nl": ("Schrijf u in op {name}, het buurtnetwerk van uw gemeente: scan de QR-code of open "
           "{url}/register en typ deze code. Aantal mogelijke accounts voor uw gezin: {uses}. "
           "Deel deze code niet buiten uw gezin."),
    "de": ("Melden Sie sich bei {name} an, dem Nachbarschaftsnetz Ihrer Gemeinde: Scannen Sie den "
           "QR-Code oder öffnen Sie {url}/register und geben Sie diesen Code ein. Mögliche Konten für "
           "Ihren Haushalt: {uses}. Geben Sie diesen Code nicht außerhalb Ihres Haushalts weiter."),
    "en": ("Join {name}, the neighbourhood network of your commune: scan the QR code or open "
           "{url}/register and type this code. Accounts your household can open: {uses}. "
           "Do not share this code outside your household."),
}

# Only said when the instance is served over https: phone apps refuse plain http.
APP_HINTS = {
    "fr": "Vous pouvez aussi utiliser une application Mastodon avec le serveur {domain}.",
    "nl": "U kunt ook een Mastodon-app gebruiken met de server {domain}.",
    "de": "Sie können auch eine Mastodon-App mit dem Server {domain} verwenden.",
    "en": "You can also use a Mastodon app with the server {domain}.",
}


def pdf_text(text: str) -> str:
    """`text` with every character the core fonts cannot show replaced (é stays, ł -> l, 漢 -> ?)."""
    out = []
    for char in text:
        try:
            char.encode(PDF_ENCODING)
            out.append(char)
            continue
        except UnicodeEncodeError:
            pass
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        try:
            base.encode(PDF_ENCODING)
            out.append(base or "?")
        except UnicodeEncodeError:
            out.append({"ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i"}.get(char, "?"))
    return "".join(out)


def register_url(settings: Settings, code: str) -> str:
    return f"{settings.base_url}/register?code={code}"


def qr_png(data: str) -> io.BytesIO:
    """A QR code of `data` as a PNG in memory."""
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=10, border=0)
    buffer.seek(0)
    return buffer


def page_languages(settings: Settings) -> list[str]:
    languages = [lang for lang in settings.instance.languages if lang in INSTRUCTIONS]
    return languages or list(LANGUAGE_ORDER)


def instruction_text(settings: Settings, language: str, uses: int) -> str:
    text = INSTRUCTIONS[language].format(name=settings.instance.name, url=settings.base_url, uses=uses)
    if settings.instance.scheme == "https":
        text += " " + APP_HINTS[language].format(domain=settings.instance.domain)
    return text


def add_letter_page(pdf: FPDF, settings: Settings, item: IssuedCode) -> None:
    """One page: commune, village, the code, its QR code and the instructions."""
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    pdf.set_font("Helvetica", "B", 22)
    pdf.multi_cell(width, 10, pdf_text(settings.instance.name), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 16)
    pdf.multi_cell(width, 8, pdf_text(item.village.name), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(6)
    languages = page_languages(settings)
    pdf.set_font("Helvetica", "", 11)
    heading = " / ".join(HEADINGS[lang] for lang in languages)
    pdf.multi_cell(width, 6, pdf_text(heading), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Courier", "B", 28)
    pdf.cell(width, 16, pdf_text(item.code), border=1, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    size = 45
    url = register_url(settings, item.code)
    pdf.image(qr_png(url), x=(pdf.w - size) / 2, y=pdf.get_y(), w=size, h=size)
    pdf.set_y(pdf.get_y() + size + 2)
    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(width, 4, pdf_text(url), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    for language in languages:
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(width, 5, language.upper(), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(width, 5, pdf_text(instruction_text(settings, language, item.uses)), align="L",
                       new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)


def render_letters(settings: Settings, issued: Iterable[IssuedCode]) -> bytes:
    """The PDF (bytes) with one page per issued code."""
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.core_fonts_encoding = PDF_ENCODING
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(False)
    pdf.set_title(pdf_text(f"{settings.instance.name}: household codes"))
    pdf.set_creator("Voisinage")
    count = 0
    for item in issued:
        add_letter_page(pdf, settings, item)
        count += 1
    if count == 0:
        raise ValueError("no household code to print")
    return bytes(pdf.output())


def write_letters(settings: Settings, issued: Iterable[IssuedCode], path: Path) -> int:
    """Write the letters to `path`; returns the number of pages."""
    items = list(issued)
    path.write_bytes(render_letters(settings, items))
    return len(items)
