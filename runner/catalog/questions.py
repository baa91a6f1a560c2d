"""How the project settles each open question of the Graph API reference (§10).

``insights-graph-api-v2.md`` §10 lists 64 points where its sources disagree or are silent.
Each is settled here once; the runner (R) and the simulator (S) follow the same choice,
and where the runner depends on the answer, its client accepts both readings.  README's
"Moving to the Graph API" section prints this table (``insights-runner`` reads it from
here, so the two cannot drift); ``tests/test_catalog_v2.py`` checks that every numbered
question of the reference has an answer.
"""

from __future__ import annotations

SETTLED: dict[int, tuple[str, str]] = {
    # ---------------------------------------------------------------- routes, methods
    1: ("GET or POST for the five queries",
        "R sends POST with a JSON body (DOC, the later state). S serves POST only; a GET "
        "there is 405."),
    2: ("old routes sharingLinks/{siteUrl}/summary and sites/{siteId}/detailrecords",
        "Not used by R, not served by S (404)."),
    3: ("POST fields: query parameters or JSON body",
        "JSON body, Content-Type: application/json (the samples). S rejects another type."),
    4: ("v1 names (token, top, filters, language) in v2 bodies",
        "R never sends them. S ignores unknown body keys."),
    5: ("path casing (siteId/siteid, detailRecords/detailrecords)",
        "R sends the DOC table's casing; S matches literal segments case-insensitively "
        "(catalog.match_path)."),
    6: ("PATCH for settag while DOC's general page lists GET/POST/DELETE",
        "PATCH (the endpoint page and OAS)."),
    7: ("Healthz path and auth",
        "GET {base}/insights/healthz (any casing), no token needed, a plain-text body "
        "(S: Healthy). Not a playbook module."),
    8: ("the /insights prefix missing from OAS",
        "Every v2 path hangs below the data center's .../insights base, as DOC's samples."),
    # ------------------------------------------------------- parameters and encoding
    9: ("single or double percent-encoding of path values",
        "R encodes every path value once, every reserved character included (@ # / :); "
        "S decodes until stable, so single, double and a raw @ all work."),
    10: ("which omitted parameters the server rejects",
         "The runner's schema requires what DOC marks required for a report to make sense "
         "(path values, dataSources, exportOptionType on groups, link type): their omission "
         "is refused before any request."),
    11: ("group export: required groupId vs 'omit it for all groups'",
         "No all-groups export on v2: an empty group_ids is refused on a v2 connection with "
         "the alternative (group_summary, then one job per group)."),
    12: ("groupId format",
         "Whatever identifies the group: R passes the value through, percent-encoded (the "
         "M365 demo uses the group id, the Google modules the group's email)."),
    13: ("which report the M365 user access export produces without exportOptionType",
         "export_option is refused on v2 (named in the error); S produces the summary + "
         "all-objects report (option 2)."),
    14: ("exportOptionType=2 in the Google user access sample",
         "R never sends it; S ignores it."),
    15: ("Google group exportOptionType=1 'not supported yet'",
         "Refused before any job: the Google enum has 2 and 3 only. S answers 400 for 1."),
    16: ("M365 dataSources spelling and case",
         "R sends the DOC spelling (SharePoint Online, OneDrive...); S matches "
         "case-insensitively and also takes 'onedrive for business'."),
    17: ("Google dataSources: User Drive or my drive",
         "R sends 'my drive' / 'shared drive' (sample, OAS); a playbook may write user_drive; "
         "S takes both spellings in any case."),
    18: ("link export times required; default activity window",
         "Optional in the runner (OAS, v1), as on v1; S reads an absent bound as unbounded."),
    19: ("time zone and format of startTime/finishTime",
         "Sent as written in the playbook (yyyy-MM-ddTHH:mm:ss recommended), no zone added "
         "or converted."),
    20: ("finishTime inclusive or exclusive",
         "Inclusive (S), as v1's endTime."),
    21: ("eventTypes vocabularies",
         "Free strings, passed through as repeated query keys."),
    22: ("sites/overview riskLevel: integer or array",
         "An array of integer codes (DOC sample, OAS); S also takes a single integer."),
    23: ("riskLevel labels (0 No risk / N/A; -2)",
         "The codes are what counts: 0 No risk, 1-3, -2 N/A (catalog.RISK_LEVEL); labels are "
         "display only."),
    24: ("link-type labels (32 specific/flexible/external, 128 anyone/anonymous)",
         "Codes 32/64/128; every label is an accepted spelling (specific, flexible, "
         "organization, anyone, anonymous)."),
    25: ("the unexplained PrincipalTypes and ExportOptionType values",
         "Not offered: the enums hold the explained codes only."),
    26: ("a user email as a Google driveIds value",
         "Yes: a My Drive is addressed by its owner's email (S seeds it so)."),
    27: ("special principal names as {groupId}",
         "Passed through, percent-encoded like any path value (| and : included)."),
    # ----------------------------------------------------- limits and concurrency
    28: ("the 5-job limit on v2, and its error",
         "5 per tenant by default, a tenant's max_exports changes it; S refuses the sixth "
         "with HTTP 400 {status: 400, message: 'Only 5 export jobs can be run "
         "simultaneously...'} and R backs off and resubmits, as on v1."),
    29: ("rate limits, 429",
         "None documented: R honours 429 + Retry-After when it comes, as on v1."),
    30: ("most emails/siteUrls on users/access and sites/permission",
         "100 (v1, OAS unused schemas); longer lists are chunked."),
    31: ("pageSize above 100",
         "R never sends more than 100 (schema maximum); S answers 400."),
    32: ("query-string length with 100 siteUrls/driveIds",
         "Accepted: 100 values per request as documented; S has no limit below that."),
    33: ("a retried export GET makes a second job",
         "Assumed yes: R never retries an export start blindly (SubmitPolicy, as v1's POST); "
         "S creates a job per GET."),
    # ----------------------------------------------------- responses and fields
    34: ("users/summary array: results or values",
         "R reads either (results first); S answers results (DOC)."),
    35: ("users/summary startPage base 1 or 0",
         "1 (DOC, v1); S pages from 1."),
    36: ("lastSignIn / LastSignIn / lastSignin",
         "R writes lastSignIn and reads any of the three; S answers lastSignIn."),
    37: ("sitesWithDirectAccess / sitesWithDirectAcccess",
         "R writes sitesWithDirectAccess, reads both; S answers sitesWithDirectAccess."),
    38: ("dataType + trainableClassifier vs sensitiveInfoType",
         "DOC's shape (dataType, trainableClassifier); R also reads sensitiveInfoType."),
    39: ("dataType: comma-joined string or list",
         "As DOC: a string in users/access, a list in detailRecords; passed through."),
    40: ("trainableClassifier: string or list",
         "A string on v2 (DOC); passed through."),
    41: ("sensitiveLevel vs sensitivityLevel; blockDownload",
         "R writes sensitivityLevel and reads both; extra keys are kept as they come."),
    42: ("sharingLinks/summary linkType: display string or code",
         "S answers the display string (samples); R passes it through."),
    43: ("userStatus Active or Activate",
         "S answers Active (DOC sample) on both generations."),
    44: ("groupType casing",
         "DOC sample casing; passed through."),
    45: ("group summary: only groups with external users, or all",
         "Only groups with external users (v1), so both generations list the same groups."),
    46: ("timestamp formats",
         "Passed through as strings."),
    47: ("nextLink: URL to follow or token to send back",
         "An opaque token sent back in the next request's body; R stops when it is null or "
         "empty, and refuses a token that repeats."),
    48: ("end of page-number paging",
         "A short or empty page ends it (nextLink is always null)."),
    49: ("site-id lookup: several ids; unknown URL",
         "R writes one record per id with the URL it asked for; S answers an empty values "
         "for an unknown URL."),
    50: ("setTag semantics",
         "Any non-empty tag name is accepted (S creates it on first use); it replaces the "
         "object's tag; an unknown site or object is 404; no removal. A finished set_tag "
         "is not repeated on a re-run."),
    51: ("error contract: HTTP status vs body status",
         "R trusts the HTTP status first, then a non-200 body status; S keeps both equal."),
    # ------------------------------------------------------------ jobs and files
    52: ("jobId string in answers, int32 in routes",
         "R keeps the string, refuses one that is not digits, and sends it as is in the "
         "path; S answers strings of digits."),
    53: ("jobStatus 0, 4, 5, 6",
         "Read like v1: 4 is success with exceptions (downloaded), 6 stopped (failed), 0 and "
         "5 not finished."),
    54: ("exportfile before completion, after failure, unknown job; repeats",
         "S: 400 before completion or after failure, 404 for an unknown job, repeat "
         "downloads allowed; R downloads only after jobStatus 2 or 4."),
    55: ("zip contents and naming",
         "A .zip of .xlsx; S names it in Content-Disposition as on v1; R falls back to "
         "<operation>-<job>.zip."),
    56: ("v1 and v2 job ids: one number space; visibility",
         "One number space in S, each job visible to its tenant only; R never reads a job "
         "through the other generation's routes."),
    57: ("report language on v2",
         "en-US; language is refused on a v2 connection."),
    # ------------------------------------------------------- authentication, hosts
    58: ("client_id in the certificate flow",
         "R sends client_id with the assertion (DOC prose, as the v1 client always did)."),
    59: ("client-assertion lifetime",
         "5 minutes (v1 sample), within either reading."),
    60: ("fixed /connect/token or discovery",
         "R reads the discovery document (v1's sample) and posts to the token_endpoint it "
        "names, DOC's /connect/token, for both flows."),
    61: ("identity host for each Graph host",
         "By environment (runner.regions): gov with identity-gov, aos2 with identity-aos2, "
         "FedRAMP with identity.online15.net, every other with the commercial service."),
    62: ("Insights in Qatar, AOS2, FedRAMP; China North",
         "Qatar, AOS2 and FedRAMP are v2-only data centers, China North v1-only; a "
         "connection pairing one with the other generation is refused."),
    63: ("FedRAMP path differences",
         "None assumed: the same paths below https://graphusgovapi.online15.net/insights."),
    # ------------------------------------------------------------------ deprecation
    64: ("no removal date for v1",
         "v1 stays the default while it works; init writes api: v2 with a comment."),
}
