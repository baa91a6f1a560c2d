"""The simulator's Graph API (v2) endpoints, served beside v1 on the same server over the
same tenant (plus a Google Workspace tenant): routing by the catalog's v2 path templates
(``routes``), the record shapes (``records``), the handlers and envelopes (``api``) and the
export files (``reports``).  See README, "The simulator", section "Graph API (v2)".
"""
