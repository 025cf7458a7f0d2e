package web

import "net/http"

// route is one entry of the route table: a method, a ServeMux path pattern
// and its handler. The table both registers the routes and lists them, so
// tests can walk every route and compare the API ones with /openapi.json.
type route struct {
	method string
	path   string
	h      http.Handler
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// routes lists every route the server answers, with its method. GET
// patterns also answer HEAD. Authentication and roles are applied here, so
// the access rules of the whole surface read in one screen.
func (s *server) routes() []route {
	return []route{
		// Operations.
		{"GET", "/healthz", s.handleHealthz()},
		{"GET", "/readyz", s.handleReadyz()},
		{"GET", "/metrics", s.handleMetrics()},
		{"GET", "/openapi.json", s.handleOpenAPI()},
		{"GET", "/static/", s.handleStatic()},

		// JSON API: accounts and sessions.
		{"POST", "/api/v1/accounts", s.handleSignUp()},
		{"POST", "/api/v1/sessions", s.handleLogin()},
		{"DELETE", "/api/v1/sessions/current", s.apiAuth(s.handleLogout())},
		{"GET", "/api/v1/me", s.apiAuth(s.handleMe())},
		{"PATCH", "/api/v1/me", s.apiAuth(s.handleUpdateMe())},
		{"POST", "/api/v1/me/password", s.apiAuth(s.handleChangePassword())},
		{"GET", "/api/v1/me/sessions", s.apiAuth(s.handleSessions())},
		{"DELETE", "/api/v1/me/sessions/{id}", s.apiAuth(s.handleRevokeSession())},
		{"POST", "/api/v1/me/sessions/revoke-others", s.apiAuth(s.handleRevokeOthers())},
		{"POST", "/api/v1/email-verifications", s.handleSendVerification()},
		{"POST", "/api/v1/email-verifications/confirm", s.handleConfirmVerification()},
		{"POST", "/api/v1/password-resets", s.handleRequestReset()},
		{"POST", "/api/v1/password-resets/confirm", s.handleConfirmReset()},

		// JSON API: the policy in force.
		{"GET", "/api/v1/policy", s.handlePolicyJSON()},

		// Public notice.
		{"GET", "/{$}", s.pageHome()},
		{"GET", "/privacy", s.pagePrivacy()},
		{"GET", "/privacy/versions", s.pagePrivacyVersions()},
		{"GET", "/privacy/versions/{n}", s.pagePrivacyVersion()},

		// Pages: sign-up, login, verification, reset.
		{"GET", "/signup", s.pageSignUp()},
		{"POST", "/signup", s.pageSignUpPost()},
		{"GET", "/login", s.pageLogin()},
		{"POST", "/login", s.pageLoginPost()},
		{"POST", "/logout", s.pageLogout()},
		{"GET", "/verify-email", s.pageVerifyEmail()},
		{"POST", "/verify-email", s.pageVerifyEmailPost()},
		{"POST", "/verify-email/resend", s.pageResendVerificationPost()},
		{"GET", "/reset-password", s.pageResetPassword()},
		{"POST", "/reset-password", s.pageResetPasswordPost()},
		{"POST", "/reset-password/confirm", s.pageResetConfirmPost()},

		// Pages: the member's account.
		{"GET", "/account", s.pageAuth(s.pageAccount())},
		{"POST", "/account/profile", s.pageAuth(s.pageAccountProfilePost())},
		{"POST", "/account/password", s.pageAuth(s.pageAccountPasswordPost())},
		{"POST", "/account/sessions/{id}/revoke", s.pageAuth(s.pageRevokeSessionPost())},
		{"POST", "/account/sessions/revoke-others", s.pageAuth(s.pageRevokeOthersPost())},

		// Pages: staff console.
		{"GET", "/admin", s.pageRole(s.pageAdmin(), "admin", "privacy", "support", "analyst")},
		{"GET", "/admin/outbox", s.pageRole(s.pageOutbox(), "admin")},
		{"GET", "/admin/outbox/{id}", s.pageRole(s.pageOutboxMessage(), "admin")},
		{"GET", "/admin/audit", s.pageRole(s.pageAudit(), "admin", "privacy")},

		// Demo site (development only, when the operator ships one).
		{"GET", "/demo/", s.handleDemo()},

		// --- consent and newsletters (issue 5) ---
		{"GET", "/.well-known/gpc.json", s.withConsent(s.handleGPCStatement())},
		{"GET", "/.well-known/steward/receipt-key", s.withConsent(s.handleReceiptKey())},
		{"GET", "/api/v1/me/consents", s.withConsent(s.apiAuth(s.handleMyConsents()))},
		{"PUT", "/api/v1/me/consents/{purpose}", s.withConsent(s.apiAuth(s.handlePutConsent()))},
		{"GET", "/api/v1/me/policy-changes", s.withConsent(s.apiAuth(s.handlePolicyChanges()))},
		{"POST", "/api/v1/me/policy-changes/{version}/acceptance", s.withConsent(s.apiAuth(s.handleAcceptPolicy()))},
		{"GET", "/api/v1/me/newsletters", s.withConsent(s.apiAuth(s.handleMyNewsletters()))},
		{"PUT", "/api/v1/me/newsletters/{list}", s.withConsent(s.apiAuth(s.handleMySubscribe()))},
		{"DELETE", "/api/v1/me/newsletters/{list}", s.withConsent(s.apiAuth(s.handleMyUnsubscribe()))},
		{"GET", "/api/v1/newsletters", s.withConsent(s.handleNewsletters())},
		{"POST", "/api/v1/newsletters/{list}/subscriptions", s.withConsent(s.handleSubscribe())},
		{"POST", "/api/v1/admin/newsletters", s.withConsent(s.apiRole(s.handleCreateList(), "admin"))},
		{"GET", "/api/v1/admin/newsletters/{list}/campaigns", s.withConsent(s.apiRole(s.handleCampaigns(), "admin"))},
		{"POST", "/api/v1/admin/newsletters/{list}/campaigns", s.withConsent(s.apiRole(s.handleSendCampaign(), "admin"))},
		{"POST", "/api/v1/admin/newsletters/unsubscriptions", s.withConsent(s.apiRole(s.handleStaffUnsubscribe(), "admin", "support"))},
		{"GET", "/api/v1/admin/notices", s.withConsent(s.apiRole(s.handleNotices(), "admin", "privacy"))},
		{"POST", "/api/v1/admin/notices", s.withConsent(s.apiRole(s.handleBroadcast(), "admin", "privacy"))},
		{"GET", "/newsletters/confirm", s.withConsent(s.pageConfirm())},
		{"POST", "/newsletters/confirm", s.withConsent(s.pageConfirmPost())},
		{"GET", "/newsletters/unsubscribe", s.withConsent(s.pageUnsubscribe())},
		{"POST", "/newsletters/unsubscribe", s.withConsent(s.handleUnsubscribePost())},
		{"GET", "/newsletters/preferences", s.withConsent(s.pagePreferences())},
		{"POST", "/newsletters/preferences", s.withConsent(s.pagePreferencesPost())},
		{"GET", "/newsletters/t/open", s.withConsent(s.handleTrackOpen())},
		{"GET", "/newsletters/t/click", s.withConsent(s.handleTrackClick())},
		{"GET", "/account/consents", s.withConsent(s.pageAuth(s.pageConsents()))},
		{"POST", "/account/consents/{purpose}", s.withConsent(s.pageAuth(s.pageConsentPost()))},
		{"GET", "/account/consents/receipts/{id}", s.withConsent(s.pageAuth(s.pageReceipt()))},
		{"POST", "/account/newsletters/{list}", s.withConsent(s.pageAuth(s.pageNewsletterPost()))},
		{"POST", "/account/policy-acceptance", s.withConsent(s.pageAuth(s.pageAcceptPolicyPost()))},
		{"GET", "/admin/newsletters", s.withConsent(s.pageRole(s.pageNewsletterAdmin(), "admin", "privacy", "support"))},
		{"POST", "/admin/newsletters/{list}/campaigns", s.withConsent(s.pageRole(s.pageCampaignPost(), "admin"))},
		{"POST", "/admin/newsletters/unsubscribe", s.withConsent(s.pageRole(s.pageStaffUnsubscribePost(), "admin", "support"))},
		{"POST", "/admin/notices", s.withConsent(s.pageRole(s.pageBroadcastPost(), "admin", "privacy"))},
		// --- end consent and newsletters ---

		// --- rights (issue 3) ---
		{"GET", "/api/v1/me/data", s.apiRights(s.handleMyData())},
		{"POST", "/api/v1/me/requests", s.apiRights(s.handleFileMine())},
		{"GET", "/api/v1/me/requests", s.apiRights(s.handleMyRequests())},
		{"GET", "/api/v1/me/requests/{id}", s.apiRights(s.handleMyRequest())},
		{"GET", "/api/v1/me/requests/{id}/download", s.apiRights(s.handleMyDownload())},
		{"POST", "/api/v1/requests", s.withRights(s.handleFileByEmail())},
		{"POST", "/api/v1/requests/{id}/verify", s.withRights(s.handleVerifyRequest())},
		{"GET", "/api/v1/requests/{id}", s.withRights(s.handleRequestByToken())},
		{"GET", "/api/v1/requests/{id}/download", s.withRights(s.handleDownloadByToken())},
		{"GET", "/api/v1/admin/requests", s.apiRightsStaff(s.handleQueue())},
		{"GET", "/api/v1/admin/requests/{id}", s.apiRightsStaff(s.handleStaffRequest())},
		{"POST", "/api/v1/admin/requests/{id}/approve", s.apiRightsStaff(s.handleDecision("approve"))},
		{"POST", "/api/v1/admin/requests/{id}/refuse", s.apiRightsStaff(s.handleDecision("refuse"))},
		{"POST", "/api/v1/admin/requests/{id}/extend", s.apiRightsStaff(s.handleDecision("extend"))},
		{"POST", "/api/v1/admin/subjects/{id}/under-age", s.apiRightsStaff(s.handleUnderAge())},
		{"GET", "/account/privacy", s.pageRights(s.pageAuth(s.pagePrivacyCentre()))},
		{"POST", "/account/privacy/requests", s.pageRights(s.pageAuth(s.pagePrivacyRequestPost()))},
		{"GET", "/account/privacy/requests/{id}/download", s.pageRights(s.pageAuth(s.handleMyDownload()))},
		{"GET", "/privacy/request", s.pageRights(s.pagePublicRequest())},
		{"POST", "/privacy/request", s.pageRights(s.pagePublicRequestPost())},
		{"POST", "/privacy/request/{id}/verify", s.pageRights(s.pagePublicVerifyPost())},
		{"POST", "/privacy/request/{id}/status", s.pageRights(s.pagePublicStatusPost())},
		{"POST", "/privacy/request/{id}/download", s.pageRights(s.pagePublicDownloadPost())},
		{"GET", "/admin/requests", s.pageRights(s.pageRole(s.pageAdminRequests(), "admin", "privacy"))},
		{"GET", "/admin/requests/{id}", s.pageRights(s.pageRole(s.pageAdminRequest(), "admin", "privacy"))},
		{"POST", "/admin/requests/{id}/approve", s.pageRights(s.pageRole(s.pageAdminDecisionPost("approve"), "admin", "privacy"))},
		{"POST", "/admin/requests/{id}/refuse", s.pageRights(s.pageRole(s.pageAdminDecisionPost("refuse"), "admin", "privacy"))},
		{"POST", "/admin/requests/{id}/extend", s.pageRights(s.pageRole(s.pageAdminDecisionPost("extend"), "admin", "privacy"))},
		{"POST", "/admin/subjects/under-age", s.pageRights(s.pageRole(s.pageUnderAgePost(), "admin", "privacy"))},
		// --- end rights ---

		// --- analytics (issue 4) ---
		{"GET", "/tracker.js", s.handleTracker()},
		{"POST", "/api/v1/collect", s.handleCollect()},
		{"OPTIONS", "/api/v1/collect", s.handleCollectPreflight()},
		{"GET", "/api/v1/trends", s.handleTrends()},
		{"GET", "/api/v1/admin/analytics/{report}", s.apiRole(s.handleReport(), "admin", "analyst")},
		{"GET", "/admin/analytics", s.pageRole(s.pageAnalytics(), "admin", "analyst")},
		// --- end analytics ---
	}
}
