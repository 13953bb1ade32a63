"""The default milestone catalogue: the union of RHF's tracker and PRD-114, with stable keys.

Every definition celebrates with a CRM note and a Slack alert to the CSM, plus the recognition
its seed names. Seeds' rewards that need a person (a gift, a call) are tasks; RHF's manual
review list (100th order, 5 years, $5,000+, VIP upgrades) requires review; RHF's exceptional
milestones (100th order, 5 years) escalate.
"""

from __future__ import annotations

from typing import Any

NOTE = {"kind": "crm_note"}
ALERT = {"kind": "slack_alert"}


def _credit(amount: str) -> dict[str, Any]:
    return {"kind": "store_credit", "amount": amount}


def _task(title: str) -> dict[str, Any]:
    return {"kind": "task", "title": title}


def _email(template: str) -> dict[str, Any]:
    return {"kind": "email", "template": template}


def _tag(tag: str) -> dict[str, Any]:
    return {"kind": "customer_tag", "tag": tag}


FEATURE_SET = ("dashboards", "reports", "integrations", "alerts")

DEFAULT_DEFINITIONS: tuple[dict[str, Any], ...] = (
    # RHF order milestones
    {"key": "order-1", "type": "order", "name": "1st Order", "condition": {"metric": "order_count", "gte": 1},
     "recognition": [NOTE, ALERT, _email("first-order-welcome"), _task("Send a welcome gift")]},
    {"key": "order-10", "type": "order", "name": "10th Order", "condition": {"metric": "order_count", "gte": 10},
     "recognition": [NOTE, ALERT, _email("order-10-thank-you")]},
    {"key": "order-25", "type": "order", "name": "25th Order", "condition": {"metric": "order_count", "gte": 25},
     "recognition": [NOTE, ALERT, _credit("10.00")]},
    {"key": "order-50", "type": "order", "name": "50th Order", "condition": {"metric": "order_count", "gte": 50},
     "recognition": [NOTE, ALERT, _credit("25.00")], "significant": True},
    {"key": "order-100", "type": "order", "name": "100th Order", "condition": {"metric": "order_count", "gte": 100},
     "recognition": [NOTE, ALERT, _tag("VIP")], "requires_review": True, "escalate": True, "significant": True},
    # RHF spend milestones
    {"key": "spend-500", "type": "spend", "name": "$500 Spent",
     "condition": {"metric": "lifetime_spend", "gte": 500},
     "recognition": [NOTE, ALERT, _email("thank-you-note")]},
    {"key": "spend-1000", "type": "spend", "name": "$1,000 Spent",
     "condition": {"metric": "lifetime_spend", "gte": 1000},
     "recognition": [NOTE, ALERT, _tag("Loyalty Tier 2")]},
    {"key": "spend-2500", "type": "spend", "name": "$2,500 Spent",
     "condition": {"metric": "lifetime_spend", "gte": 2500},
     "recognition": [NOTE, ALERT, _task("Send a premium gift")], "significant": True},
    {"key": "spend-5000", "type": "spend", "name": "$5,000 Spent",
     "condition": {"metric": "lifetime_spend", "gte": 5000},
     "recognition": [NOTE, ALERT, _task("Make a personal thank-you call")], "requires_review": True,
     "significant": True},
    # Anniversaries (RHF 1/2/5 years; PRD-114 FR-1.1)
    {"key": "anniversary-1y", "type": "time", "name": "1 Year Anniversary", "condition": {"tenure": {"years": 1}},
     "recognition": [NOTE, ALERT, {"kind": "discount_code", "percentage": 20, "valid_days": 7, "code_prefix": "YEAR1"},
                     _email("anniversary-1y")]},
    {"key": "anniversary-2y", "type": "time", "name": "2 Year Anniversary", "condition": {"tenure": {"years": 2}},
     "recognition": [NOTE, ALERT, _task("Award bonus points")]},
    {"key": "anniversary-5y", "type": "time", "name": "5 Year Anniversary", "condition": {"tenure": {"years": 5}},
     "recognition": [NOTE, ALERT, _task("Send a special gift")], "requires_review": True, "escalate": True,
     "significant": True},
    # PRD-114 usage, adoption and business milestones
    {"key": "api-calls-1m", "type": "usage", "name": "1 Million API Calls",
     "condition": {"metric": "api_calls", "threshold": 1000000},
     "recognition": [NOTE, ALERT, _email("celebration")], "significant": True},
    {"key": "users-100", "type": "usage", "name": "100 Users", "condition": {"metric": "active_users", "gte": 100},
     "recognition": [NOTE, ALERT, _email("celebration")], "significant": True},
    {"key": "feature-adoption", "type": "adoption", "name": "Full Feature Adoption",
     "condition": {"all": [{"metric": f"feature.{name}", "eq": True} for name in FEATURE_SET]},
     "recognition": [NOTE, ALERT, _email("celebration")], "significant": True},
    {"key": "roi-achieved", "type": "business", "name": "ROI Achieved",
     "condition": {"metric": "roi_achieved", "eq": True},
     "recognition": [NOTE, ALERT, _task("Invite to case study participation")], "significant": True},
)

CELEBRATION_TEMPLATES: dict[str, str] = {
    "order-1": "Welcome to the family, {{ first_name }}! Your first order is on its way.",
    "order-10": "Hi {{ first_name }}, this is your 10th order! Thank you for making us part of your weekly routine.",
    "anniversary-1y": "Happy Anniversary {{ first_name }}! It's been one year since you joined us.",
    "api-calls-1m": "Congratulations {{ company_name or first_name }} on reaching 1,000,000 API calls!",
}
