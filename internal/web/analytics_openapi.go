package web

import (
	"steward/internal/analytics"
	"strings"
)

// analyticsOps documents the analytics routes in /openapi.json.
func analyticsOps() map[string]apiOp {
	return map[string]apiOp{
		"POST /api/v1/collect": {tag: "analytics", summary: "Record a page view or event from the tracker",
			request: "CollectEvent", status: 202, problems: []int{400, 403, 413, 415},
			desc: "Answers 202 only once the event is durably committed (events arriving together share one transaction), " +
				"204 when it is deliberately not recorded (a bot, or a member whose objection forbids it). Accepts " +
				"application/json and text/plain (sendBeacon). CORS is answered only for the site's origins. No cookie is set; the IP " +
				"address and user agent are used for the day's visitor hash, the country and the browser family, and are not stored."},
		"OPTIONS /api/v1/collect": {tag: "analytics", summary: "CORS preflight of the collect endpoint", status: 204, problems: []int{403}},
		"GET /api/v1/admin/analytics/{report}": {tag: "analytics", summary: "A staff report (analyst or admin)", auth: true,
			status: 200, response: "AnalyticsReport", problems: []int{400, 403, 404},
			desc: "report is one of " + strings.Join(analytics.ReportNames(), ", ") + ". Query: site (optional with one site), from and to " +
				"(YYYY-MM-DD, the site's local days; default the last 30), limit, interval (day or hour, timeseries only)."},
		"GET /api/v1/trends": {tag: "analytics", summary: "Anonymised trends, where the policy publishes them", status: 200,
			response: "Trends", problems: []int{400, 404},
			desc: "Complete days only. Groups with fewer than k visitor-days are left out; with dp_epsilon set, each figure carries " +
				"discrete Laplace noise, and the privacy budget is stated in the answer."},
	}
}

// analyticsSchemas are the component schemas analyticsOps name.
func analyticsSchemas() map[string]any {
	integer := map[string]any{"type": "integer"}
	row := object(map[string]any{"value": str(""), "views": integer, "visitors": integer, "avg_duration_ms": integer}, "value", "views", "visitors")
	point := object(map[string]any{"start": map[string]any{"type": "string", "format": "date-time"}, "views": integer, "visitors": integer}, "start", "views", "visitors")
	trendRow := object(map[string]any{"value": str(""), "visitor_days": integer}, "value", "visitor_days")
	trendRows := map[string]any{"type": "array", "items": trendRow}
	return map[string]any{
		"CollectEvent": object(map[string]any{
			"site":        str("The site id (data-site of the script tag)."),
			"type":        map[string]any{"type": "string", "enum": []string{"pageview", "search", "outbound", "download", "event", "engagement"}},
			"url":         map[string]any{"type": "string", "maxLength": 2048, "description": "The page; only its path, utm_* parameters and the search parameter are kept."},
			"referrer":    map[string]any{"type": "string", "maxLength": 2048, "description": "Scheme, host and path are kept."},
			"search":      map[string]any{"type": "string", "description": "Search terms (type search)."},
			"duration_ms": map[string]any{"type": "integer", "minimum": 1, "maximum": 86400000, "description": "Time on the page (type engagement)."},
			"name":        map[string]any{"type": "string", "maxLength": 64, "description": "Custom event name (type event)."},
			"target":      map[string]any{"type": "string", "maxLength": 2048, "description": "The link followed (types outbound and download)."},
			"screen":      map[string]any{"type": "string", "enum": []string{"phone", "tablet", "laptop", "desktop", "wide"}},
			"props":       map[string]any{"type": "object", "maxProperties": 20, "description": "Flat string, number or boolean properties (type event)."},
			"ts":          map[string]any{"type": "integer", "description": "The client's clock in ms; refused more than 5 minutes off."},
		}, "site", "type", "url"),
		"AnalyticsReport": object(map[string]any{
			"site": str(""), "report": str(""), "from": str(""), "to": str(""), "time_zone": str(""), "interval": str(""),
			"totals": object(map[string]any{"views": integer, "visitors": integer, "avg_duration_ms": integer}),
			"rows":   map[string]any{"type": "array", "items": row},
			"points": map[string]any{"type": "array", "items": point},
			"daily_from": map[string]any{"type": "string", "description": "Set when the range reaches before the first day still held daily: " +
				"earlier days count only through whole calendar months of the range (monthly aggregates, rare values merged as \"(other)\"), and the series starts here."},
		}, "site", "report", "from", "to", "time_zone", "totals"),
		"Trends": object(map[string]any{
			"site": str(""), "from": str(""), "to": str(""), "time_zone": str(""),
			"privacy": object(map[string]any{"unit": str(""), "k": integer, "epsilon_per_count": map[string]any{"type": "number"},
				"mechanism": str(""), "sensitivity": integer, "statement": str("")}),
			"days":              map[string]any{"type": "array", "items": object(map[string]any{"day": str(""), "visitor_days": integer})},
			"pages":             trendRows,
			"referrers":         trendRows,
			"countries":         trendRows,
			"browsers":          trendRows,
			"systems":           trendRows,
			"suppressed_groups": integer,
		}, "site", "from", "to", "privacy", "days", "pages", "countries"),
	}
}
