"""Every word the review screen shows, in French and English: one table per language.

The agency's locale picks the table; a language without one gets English. Tab
labels are not here: they belong to each kind (`Kind.tab_label`).
"""

from __future__ import annotations

from typing import Final

WORDS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "title": "Relances e-mail",
        "pick_agency": "Choisissez une agence",
        "summary": "Infos du jour · {day} · {name}",
        "summary_counts": (
            "{pending} e-mail{s} à envoyer : {ready} prêt{rs}, {blocked} sans consentement"
        ),
        "summary_blocked": "{blocked} sans consentement",
        "guest": "Client",
        "booking": "Dossier",
        "consent": "Consentement",
        "empty": "Aucun e-mail dans cet onglet.",
        "empty_filter": "Aucun e-mail ne correspond au filtre « {text} ».",
        "empty_discarded": "Aucun e-mail écarté dans cet onglet.",
        "showing_discarded": "E-mails écartés (x : revenir aux e-mails à envoyer)",
        "filter": "Filtrer par client, dossier ou adresse",
        "filtered": "Filtre : « {text} » (Échap pour l'effacer)",
        "to": "À",
        "subject": "Objet",
        "listed": "Listé du {start} au {end}",
        "edited": "modifié par l'agence",
        "html_part": "Partie HTML (h : revenir au texte)",
        "will_not_send": "ne sera pas envoyé",
        "yes": "Oui",
        "no": "Non",
        "confirm_tab": "Envoyer {ready} e-mail{s} de l'onglet {tab} ?",
        "confirm_tab_edited": "Dont {edited} modifié{s} par l'agence.",
        "confirm_tab_blocked_one": (
            "1 e-mail sans consentement ne sera pas envoyé (il reste en attente)."
        ),
        "confirm_tab_blocked_many": (
            "{blocked} e-mails sans consentement ne seront pas envoyés (ils restent en attente)."
        ),
        "nothing_to_send": "Rien à envoyer dans {tab}",
        "confirm_discard": (
            "Écarter l'e-mail à {guest} (dossier {booking}) ? Il ne sera pas envoyé."
        ),
        "sending": "Envoi en cours…",
        "busy": "Un envoi est en cours : attendez qu'il se termine.",
        "no_selection": "Aucun e-mail sélectionné.",
        "not_pending": "Cet e-mail est écarté : il ne peut pas être modifié ni envoyé.",
        "sent": "#{id} {guest} ({booking}) : envoyé à {to}",
        "held": (
            "#{id} {guest} ({booking}) : non envoyé, sans consentement ({reason}) : "
            "reste en attente"
        ),
        "not_sent": "#{id} {guest} ({booking}) : non envoyé : {detail}",
        "retry": "#{id} {guest} ({booking}) : non envoyé : {detail} ; nouvel essai plus tard",
        "not_tried": "#{id} {guest} ({booking}) : pas essayé : {detail}",
        "taken": "#{id} {guest} ({booking}) : envoyé par un autre poste entre-temps",
        "report": "{what} : {sent} envoyé{s}, {not_sent} non envoyé{ns}",
        "stopped": "Envoi interrompu : {reason}",
        "saved": "E-mail #{id} enregistré : {subject}",
        "unchanged": "E-mail #{id} inchangé",
        "discarded": "E-mail #{id} écarté ({guest}, dossier {booking})",
        "restored": "E-mail #{id} rétabli ({guest}, dossier {booking})",
        "not_discarded": "Cet e-mail n'est pas écarté : x montre les e-mails écartés.",
        "no_editor": "impossible de lancer l'éditeur : {error} : définissez $EDITOR",
    },
    "en": {
        "title": "Reminder emails",
        "pick_agency": "Choose an agency",
        "summary": "Today · {day} · {name}",
        "summary_counts": "{pending} email{s} to send: {ready} ready, {blocked} without consent",
        "summary_blocked": "{blocked} without consent",
        "guest": "Guest",
        "booking": "Booking",
        "consent": "Consent",
        "empty": "No email in this tab.",
        "empty_filter": "No email matches the filter “{text}”.",
        "empty_discarded": "No discarded email in this tab.",
        "showing_discarded": "Discarded emails (x: back to the emails to send)",
        "filter": "Filter by guest, booking or address",
        "filtered": "Filter: “{text}” (Escape clears it)",
        "to": "To",
        "subject": "Subject",
        "listed": "Listed {start} to {end}",
        "edited": "edited by staff",
        "html_part": "HTML part (h: back to the text)",
        "will_not_send": "will not be sent",
        "yes": "Yes",
        "no": "No",
        "confirm_tab": "Send {ready} email{s} of the tab {tab}?",
        "confirm_tab_edited": "{edited} of them edited by staff.",
        "confirm_tab_blocked_one": "1 email without consent will not be sent (it stays pending).",
        "confirm_tab_blocked_many": (
            "{blocked} emails without consent will not be sent (they stay pending)."
        ),
        "nothing_to_send": "Nothing to send in {tab}",
        "confirm_discard": "Discard the email to {guest} (booking {booking})? It will not be sent.",
        "sending": "Sending…",
        "busy": "A send is under way: wait for it to finish.",
        "no_selection": "No email selected.",
        "not_pending": "This email is discarded: it cannot be edited or sent.",
        "sent": "#{id} {guest} ({booking}): sent to {to}",
        "held": "#{id} {guest} ({booking}): not sent, no consent ({reason}): stays pending",
        "not_sent": "#{id} {guest} ({booking}): not sent: {detail}",
        "retry": "#{id} {guest} ({booking}): not sent: {detail}; tried again later",
        "not_tried": "#{id} {guest} ({booking}): not tried: {detail}",
        "taken": "#{id} {guest} ({booking}): sent by another process meanwhile",
        "report": "{what}: {sent} sent, {not_sent} not sent",
        "stopped": "Sending stopped: {reason}",
        "saved": "Email #{id} saved: {subject}",
        "unchanged": "Email #{id} unchanged",
        "discarded": "Email #{id} discarded ({guest}, booking {booking})",
        "restored": "Email #{id} restored ({guest}, booking {booking})",
        "not_discarded": "This email is not discarded: x shows the discarded emails.",
        "no_editor": "cannot start the editor: {error}: set $EDITOR",
    },
}

#: The two lines of keys at the bottom of the screen: (key, what it does); None starts
#: the second line (each fits in 80 columns).
KEYS: Final[dict[str, list[tuple[str, str] | None]]] = {
    "fr": [
        ("tab", "onglet suivant"),
        ("e", "modifier"),
        ("s", "envoyer"),
        ("a", "tout envoyer"),
        ("d", "écarter"),
        None,
        ("/", "filtrer"),
        ("h", "HTML"),
        ("x", "écartés"),
        ("r", "rétablir"),
        ("g", "agence"),
        ("f5", "relire"),
        ("q", "quitter"),
    ],
    "en": [
        ("tab", "next tab"),
        ("e", "edit"),
        ("s", "send"),
        ("a", "send the tab"),
        ("d", "discard"),
        None,
        ("/", "filter"),
        ("h", "HTML"),
        ("x", "discarded"),
        ("r", "restore"),
        ("g", "agency"),
        ("f5", "reload"),
        ("q", "quit"),
    ],
}

#: The consent reasons of SPEC §3, as staff say them.
CONSENT_WORDS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "ok": "prêt",
        "no_address": "pas d'adresse",
        "unconfirmed": "adresse non confirmée",
        "confirmation_pending": "confirmation attendue",
        "opted_out": "désinscrit",
        "inactive": "à reconfirmer",
        "kind_refused": "refuse ce type d'e-mail",
    },
    "en": {
        "ok": "ready",
        "no_address": "no address",
        "unconfirmed": "not confirmed",
        "confirmation_pending": "awaiting confirmation",
        "opted_out": "opted out",
        "inactive": "must reconfirm",
        "kind_refused": "refused this kind",
    },
}

#: The date each kind is anchored on, as a column header.
ANCHOR_WORDS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "balance_due_on": "Solde dû",
        "arrival_on": "Arrivée",
        "option_expires_on": "Fin d'option",
        "departure_on": "Départ",
    },
    "en": {
        "balance_due_on": "Balance due",
        "arrival_on": "Arrival",
        "option_expires_on": "Option ends",
        "departure_on": "Departure",
    },
}


def language_of(locale_language: str) -> str:
    """Return the table's language for an agency's language: its own, else English."""
    return locale_language if locale_language in WORDS else "en"


def say(language: str, key: str, **values: object) -> str:
    """Return the sentence `key` in `language`, filled with `values`."""
    return WORDS[language_of(language)][key].format(**values)


def keys(language: str) -> list[tuple[str, str] | None]:
    """Return the keys lines' (key, what it does) pairs; None between the two lines."""
    return KEYS[language_of(language)]


def consent_words(language: str, reason: str) -> str:
    """Return a consent reason in words (its code when the table has none)."""
    return CONSENT_WORDS[language_of(language)].get(reason, reason)


def anchor_words(language: str, anchor: str) -> str:
    """Return the header of a kind's anchor date column."""
    return ANCHOR_WORDS[language_of(language)].get(anchor, anchor)


def plural(language: str, count: int) -> str:
    """Return the plural ending for `count`: French counts 0 and 1 as singular."""
    many = count > 1 if language_of(language) == "fr" else count != 1
    return "s" if many else ""
