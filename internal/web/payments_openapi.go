package web

// paymentsOps documents the payment routes in /openapi.json.
func paymentsOps() map[string]apiOp {
	return map[string]apiOp{
		"POST /api/v1/payments/webhook": {tag: "payments", summary: "The payment processor's events (Stripe's webhook shape)",
			request: "PaymentEvent", status: 200, response: "PaymentOutcome", problems: []int{400, 401, 403, 413, 415},
			security: []string{"stripeSignature"},
			desc: "The Stripe-Signature header is verified against the endpoint secret (STEWARD_PAYMENT_WEBHOOK_SECRET) with a " +
				"five-minute tolerance. Only the fields the policy declares are kept (card token, brand, last four digits, billing " +
				"address); never a card number. A replayed event answers 200 with duplicate set and stores nothing. Plain HTTP is " +
				"refused outside development mode (403 insecure_transport)."},
		"GET /api/v1/payments/methods": {tag: "payments", summary: "The member's own payment cards (token, brand, last four digits, billing address)",
			auth: true, status: 200, response: "PaymentMethods", problems: []int{403}},
		"GET /api/v1/payments/members/{id}/methods": {tag: "staff", summary: "A member's payment cards, for billing staff (purpose payment)",
			auth: true, status: 200, response: "PaymentMethods", problems: []int{403, 404}},
	}
}

func paymentsSchemas() map[string]any {
	str := map[string]any{"type": "string"}
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	address := object(map[string]any{"line1": str, "line2": str, "city": str, "postal_code": str, "state": str, "country": str})
	return map[string]any{
		"PaymentEvent": map[string]any{"type": "object", "description": "An event as the processor sends it; read only for the fields the policy declares.",
			"properties": map[string]any{"id": str, "type": str, "data": map[string]any{"type": "object"}}, "required": []string{"id", "type", "data"}},
		"PaymentOutcome": object(map[string]any{"event_id": str, "type": str,
			"action":    map[string]any{"type": "string", "enum": []string{"stored", "deleted", "linked", "quarantined", "ignored", "dropped"}},
			"duplicate": map[string]any{"type": "boolean"}, "released": map[string]any{"type": "integer"}, "reason": str}, "event_id", "type", "action"),
		"PaymentMethods": object(map[string]any{"methods": map[string]any{"type": "array", "items": object(map[string]any{
			"id": str, "card_token": str, "card_brand": str, "card_last4": str, "billing_address": address,
			"created_at": dateTime, "updated_at": dateTime}, "id", "created_at", "updated_at")}}, "methods"),
	}
}
