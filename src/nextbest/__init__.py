"""nextbest: a next-best-offer decisioning host built on pluggy.

The public API is what this module exports; everything else is internal.
"""

from .commands.database import database_option, open_database
from .commands.options import option_value
from .engine.catalog import CompiledCatalog
from .engine.compiler import CompiledFlow
from .engine.state import DecisionView
from .errors import (
    DecisionError,
    FlowIssue,
    FlowValidationError,
    NextbestError,
    PageInputError,
    PageNotFoundError,
    PluginError,
    StoredPolicyError,
    UnknownFlowError,
)
from .hookspecs import hookimpl, hookspec
from .host import Host
from .models.decision import Candidate, Decision, DecisionItem, Drop, ScoreBreakdown, Trace
from .models.offers import Offer, OfferCatalog
from .models.request import DecisionRequest, OfferHistory
from .plugin_api import (
    ContextChange,
    ContextProvider,
    ContextRequest,
    FormulaCompiler,
    HostAPI,
    PageRequest,
    RegisterContext,
    RegisterCustomerData,
    RegisterFunction,
    RegisterReportPage,
    RegisterRuleType,
    RegisterValueProvider,
    Registry,
    ReportPage,
    RuleContext,
    RuleOutcome,
    RuleType,
    TriggerEvent,
    ValueBatch,
    ValueProvider,
    ValueRequest,
)
from .report_blocks import (
    Axis,
    Block,
    Chart,
    Column,
    Form,
    FormField,
    Section,
    Series,
    Stat,
    Stats,
    Table,
    TableQuery,
    Text,
)
from .service import DecisionService, StoreDecision
from .store.base import Interaction
from .version import __version__

__all__ = [
    "Axis",
    "Block",
    "Candidate",
    "Chart",
    "Column",
    "CompiledCatalog",
    "CompiledFlow",
    "ContextChange",
    "ContextProvider",
    "ContextRequest",
    "Decision",
    "DecisionError",
    "DecisionItem",
    "DecisionRequest",
    "DecisionService",
    "DecisionView",
    "Drop",
    "FlowIssue",
    "FlowValidationError",
    "Form",
    "FormField",
    "FormulaCompiler",
    "Host",
    "HostAPI",
    "Interaction",
    "NextbestError",
    "Offer",
    "OfferCatalog",
    "OfferHistory",
    "PageInputError",
    "PageNotFoundError",
    "PageRequest",
    "PluginError",
    "RegisterContext",
    "RegisterCustomerData",
    "RegisterFunction",
    "RegisterReportPage",
    "RegisterRuleType",
    "RegisterValueProvider",
    "Registry",
    "ReportPage",
    "RuleContext",
    "RuleOutcome",
    "RuleType",
    "ScoreBreakdown",
    "Section",
    "Series",
    "Stat",
    "Stats",
    "StoreDecision",
    "StoredPolicyError",
    "Table",
    "TableQuery",
    "Text",
    "Trace",
    "TriggerEvent",
    "UnknownFlowError",
    "ValueBatch",
    "ValueProvider",
    "ValueRequest",
    "__version__",
    "database_option",
    "hookimpl",
    "hookspec",
    "open_database",
    "option_value",
]
