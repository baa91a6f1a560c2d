"""The service's numbers and fixed strings, the same on both generations.

The Graph API (v2) reference states none of the concurrency numbers; the runner keeps v1's
(open question 28, see ``runner.catalog.questions``).
"""

from __future__ import annotations

MAX_LIST_VALUES = 100  # site URLs, emails, group ids, drive ids in one request
MAX_PAGE_SIZE = 100  # PageSize / Top / pageSize
MAX_CONCURRENT_EXPORTS = 5  # export jobs in progress per tenant (a tenant may set max_exports)
TOKEN_LIFETIME_SECONDS = 3600
SCOPE = "insights.graph.readwrite.all"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 300
# How the service refuses an export while five are in progress (the reference is silent;
# the simulator's README section explains the choice): HTTP 400 with the query envelope,
# "content" set to EXPORT_LIMIT_CODE and "message" starting with EXPORT_LIMIT_MESSAGE.
# v2 has no "content": its refusal is recognised by the message alone.
EXPORT_LIMIT_CODE = "ExportJobLimitReached"
EXPORT_LIMIT_MESSAGE = "Only 5 export jobs can be run simultaneously"
