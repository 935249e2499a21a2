"""The host's own report pages, registered like any plugin's (entry point ``report``):
Customer profile, Offers, Simulations, Lift, and Triggers & deliveries. Orders leave room for
plugins' pages below 600 (docs/report.md lists the places taken)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..plugin_api import RegisterReportPage, ReportPage
from .customer_page import render_customer
from .lift_page import render_lift
from .offers_page import render_offers
from .simulations_page import render_simulations
from .triggers_page import render_triggers

PAGES = (
    ReportPage(
        "customer",
        "Customer profile",
        600,
        render_customer,
        "One customer's summary, interactions, recommendations and plugin sections.",
    ),
    ReportPage(
        "offers",
        "Offers",
        700,
        render_offers,
        "Impressions, response and conversion rates and value per offer and channel.",
    ),
    ReportPage(
        "simulations",
        "Simulations",
        750,
        render_simulations,
        "Population simulations: what a flow would show every customer, and two flows side "
        "by side.",
    ),
    ReportPage(
        "lift",
        "Lift",
        800,
        render_lift,
        "A flow's treatment group against its control group.",
    ),
    ReportPage(
        "triggers",
        "Triggers & deliveries",
        850,
        render_triggers,
        "Triggers, their latest firings and the webhook deliveries' status.",
    ),
)


@hookimpl
def register_report_pages(register: RegisterReportPage) -> None:
    """Register the host's pages."""
    for page in PAGES:
        register(page)
