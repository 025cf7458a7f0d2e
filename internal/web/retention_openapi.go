package web

// retentionOps documents the retention and legal-hold routes in /openapi.json.
func retentionOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /api/v1/admin/retention": {tag: "staff", summary: "What the next retention sweep would remove, per category and table (counts only)", auth: true,
			status: 200, response: "RetentionReport", problems: []int{403}},
		"GET /api/v1/admin/holds": {tag: "staff", summary: "Legal holds in force (all=1: every hold placed)", auth: true,
			status: 200, response: "Holds", problems: []int{403}},
		"POST /api/v1/admin/holds": {tag: "staff", summary: "Place a legal hold on a subject, a category, or a subject's category", auth: true,
			request: "HoldInput", status: 201, response: "Hold", problems: []int{403, 404, 409, 422}},
		"POST /api/v1/admin/holds/{id}/review": {tag: "staff", summary: "Keep a hold until a new expiry, after review", auth: true,
			request: "HoldReview", status: 200, response: "Hold", problems: []int{403, 404, 409, 422}},
		"POST /api/v1/admin/holds/{id}/lift": {tag: "staff", summary: "Lift a legal hold", auth: true,
			status: 200, response: "Hold", problems: []int{403, 404, 409}},
	}
}

// retentionSchemas are the component schemas retentionOps name.
func retentionSchemas() map[string]any {
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	integer := map[string]any{"type": "integer"}
	hold := object(map[string]any{"id": str(""), "subject_id": str(""), "category": str(""), "reason": str(""), "source": str(""),
		"placed_by": str(""), "placed_at": dateTime, "expires_at": dateTime, "lifted_at": dateTime, "lifted_by": str("")},
		"id", "reason", "source", "placed_by", "placed_at", "expires_at")
	line := object(map[string]any{"category": str(""), "table": str(""), "rule": str(""), "event": str(""), "cutoff": dateTime,
		"due": integer, "oldest": dateTime, "held": integer, "kept": str(""),
		"added": map[string]any{"type": "integer", "description": "Monthly aggregate rows the removed rollup rows were added to (rule \"then monthly aggregates\")."}},
		"category", "table", "rule", "event", "due", "held")
	return map[string]any{
		"Hold":  hold,
		"Holds": object(map[string]any{"holds": map[string]any{"type": "array", "items": ref("Hold")}}, "holds"),
		"HoldInput": object(map[string]any{"subject_id": str("a subject id; empty for everyone"), "category": str("a policy category; empty for all"),
			"reason": map[string]any{"type": "string", "maxLength": 500}, "source": str("staff, or a legal request id"), "expires_at": dateTime},
			"reason", "expires_at"),
		"HoldReview":    object(map[string]any{"expires_at": dateTime}, "expires_at"),
		"RetentionLine": line,
		"RetentionReport": object(map[string]any{"at": dateTime, "dry_run": map[string]any{"type": "boolean"},
			"lines": map[string]any{"type": "array", "items": ref("RetentionLine")}, "subjects_due": integer, "subjects_erased": integer,
			"subjects_held": integer, "keys_destroyed": integer, "took_ns": integer}, "at", "dry_run", "lines"),
	}
}
