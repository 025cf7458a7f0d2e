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
		{"GET", "/healthz", s.api(s.handleHealthz())},
		{"GET", "/readyz", s.api(s.handleReadyz())},
		{"GET", "/metrics", s.api(s.handleMetrics())},
		{"GET", "/openapi.json", s.api(s.handleOpenAPI())},
		{"GET", "/static/", s.page(s.handleStatic())},

		// JSON API: accounts and sessions.
		{"POST", "/api/v1/accounts", s.api(s.handleSignUp())},
		{"POST", "/api/v1/sessions", s.api(s.handleLogin())},
		{"DELETE", "/api/v1/sessions/current", s.apiAuthOwing(s.handleLogout())},
		{"POST", "/api/v1/sessions/current/second-factor", s.apiAuthOwing(s.handleGiveSecondFactor())},
		{"GET", "/api/v1/me/second-factors", s.apiAuth(s.handleSecondFactors())},
		{"POST", "/api/v1/me/second-factors/totp", s.apiAuthOwing(s.handleBeginTOTP())},
		{"POST", "/api/v1/me/second-factors/totp/{id}/confirm", s.apiAuthOwing(s.handleConfirmTOTP())},
		{"POST", "/api/v1/me/second-factors/passkey/options", s.apiAuthOwing(s.handleBeginPasskeyRegistration())},
		{"POST", "/api/v1/me/second-factors/passkey", s.apiAuthOwing(s.handleFinishPasskeyRegistration())},
		{"POST", "/api/v1/sessions/current/second-factor/passkey/options", s.apiAuthOwing(s.handleBeginPasskeyLogin())},
		{"POST", "/api/v1/sessions/current/second-factor/passkey", s.apiAuthOwing(s.handleFinishPasskeyLogin())},
		{"DELETE", "/api/v1/me/second-factors/{id}", s.apiAuth(s.handleRemoveSecondFactor())},
		{"GET", "/api/v1/me", s.apiAuth(s.handleMe())},
		{"PATCH", "/api/v1/me", s.apiAuth(s.handleUpdateMe())},
		{"POST", "/api/v1/me/password", s.apiAuth(s.handleChangePassword())},
		{"GET", "/api/v1/me/sessions", s.apiAuth(s.handleSessions())},
		{"DELETE", "/api/v1/me/sessions/{id}", s.apiAuth(s.handleRevokeSession())},
		{"POST", "/api/v1/me/sessions/revoke-others", s.apiAuth(s.handleRevokeOthers())},
		{"POST", "/api/v1/email-verifications", s.api(s.handleSendVerification())},
		{"POST", "/api/v1/email-verifications/confirm", s.api(s.handleConfirmVerification())},
		{"POST", "/api/v1/password-resets", s.api(s.handleRequestReset())},
		{"POST", "/api/v1/password-resets/confirm", s.api(s.handleConfirmReset())},

		// JSON API: sign-in with other services.
		{"GET", "/api/v1/sign-in-providers", s.api(s.handleSignInProviders())},
		{"GET", "/api/v1/me/sign-in-links", s.apiAuth(s.handleMySignInLinks())},
		{"DELETE", "/api/v1/me/sign-in-links/{provider}", s.apiAuth(s.handleUnlinkSignIn())},

		// JSON API: payments (all under paymentPrefix: TLS only).
		{"POST", "/api/v1/payments/webhook", s.api(s.handlePaymentWebhook())},
		{"GET", "/api/v1/payments/methods", s.apiAuth(s.handleMyPaymentMethods())},
		{"GET", "/api/v1/payments/members/{id}/methods", s.apiRole(s.handleMemberPaymentMethods(), "billing")},

		// JSON API: accounts shared between holders.
		{"POST", "/api/v1/me/shared-accounts", s.apiAuth(s.handleInvite())},
		{"GET", "/api/v1/me/shared-accounts", s.apiAuth(s.handleDelegations())},
		{"DELETE", "/api/v1/me/shared-accounts/{id}", s.apiAuth(s.handleRevokeDelegation())},
		{"POST", "/api/v1/me/invitations/accept", s.apiAuth(s.handleAcceptInvitation())},
		{"GET", "/api/v1/shared-accounts/{id}", s.apiAuth(s.handleReadShared())},
		{"POST", "/api/v1/shared-accounts/{id}/requests", s.apiAuth(s.handleFileForShared())},
		{"GET", "/account/sharing/accept", s.pageAuth(s.pageAcceptInvitation())},
		{"POST", "/account/sharing/accept", s.pageAuth(s.pageAcceptInvitationPost())},

		// Steward as the OpenID provider of the operator's applications.
		{"GET", "/oidc/", s.handleOpenIDProtocol()},
		{"POST", "/oidc/", s.handleOpenIDProtocol()},
		{"GET", "/oidc/.well-known/openid-configuration", s.api(s.handleOpenIDDiscovery())},
		{"GET", "/oidc/authorize/callback", s.page(s.handleOpenIDNotOffered())},
		{"POST", "/oidc/authorize/callback", s.page(s.handleOpenIDNotOffered())},
		{"GET", "/oidc/end_session", s.api(s.handleOpenIDNotOffered())},
		{"POST", "/oidc/end_session", s.api(s.handleOpenIDNotOffered())},
		{"POST", "/oidc/device_authorization", s.api(s.handleOpenIDNotOffered())},
		{"GET", "/oidc/sign-in", s.page(s.pageOpenIDSignIn())},
		{"POST", "/oidc/sign-in", s.pageAuth(s.pageOpenIDSignInPost())},
		{"GET", "/api/v1/me/applications", s.apiAuth(s.handleMyApplications())},
		{"DELETE", "/api/v1/me/applications/{client}", s.apiAuth(s.handleRevokeApplication())},
		{"GET", "/account/applications", s.pageAuth(s.pageMyApplications())},
		{"POST", "/account/applications/{client}/revoke", s.pageAuth(s.pageRevokeApplicationPost())},

		// JSON API: the policy in force.
		{"GET", "/api/v1/policy", s.api(s.handlePolicyJSON())},

		// Public notice.
		{"GET", "/{$}", s.page(s.pageHome())},
		{"GET", "/privacy", s.page(s.pagePrivacy())},
		{"GET", "/privacy/versions", s.page(s.pagePrivacyVersions())},
		{"GET", "/privacy/versions/{n}", s.page(s.pagePrivacyVersion())},

		// Pages: sign-up, login, verification, reset.
		{"GET", "/signup", s.page(s.pageSignUp())},
		{"POST", "/signup", s.page(s.pageSignUpPost())},
		{"GET", "/login", s.page(s.pageLogin())},
		{"POST", "/login", s.page(s.pageLoginPost())},
		{"POST", "/logout", s.page(s.pageLogout())},
		{"GET", "/verify-email", s.page(s.pageVerifyEmail())},
		{"POST", "/verify-email", s.page(s.pageVerifyEmailPost())},
		{"POST", "/verify-email/resend", s.page(s.pageResendVerificationPost())},
		{"GET", "/reset-password", s.page(s.pageResetPassword())},
		{"POST", "/reset-password", s.page(s.pageResetPasswordPost())},
		{"POST", "/reset-password/confirm", s.page(s.pageResetConfirmPost())},

		// Pages: sign-in with the services the policy declares.
		{"GET", "/login/{provider}", s.page(s.pageSignInBegin())},
		{"GET", "/login/{provider}/callback", s.page(s.pageSignInCallback())},
		{"GET", "/login/{provider}/link", s.page(s.pageSignInLink())},
		{"POST", "/login/{provider}/link", s.page(s.pageSignInLinkPost())},
		{"POST", "/account/sign-in-links/{provider}/unlink", s.pageAuth(s.pageUnlinkSignInPost())},

		// Pages: the member's account.
		{"GET", "/account", s.pageAuth(s.pageAccount())},
		{"GET", "/account/second-factor", s.pageAuthOwing(s.pageSecondFactor())},
		{"POST", "/account/second-factor/verify", s.pageAuthOwing(s.pageSecondFactorVerifyPost())},
		{"POST", "/account/second-factor/begin", s.pageAuthOwing(s.pageSecondFactorBeginPost())},
		{"POST", "/account/second-factor/enrol", s.pageAuthOwing(s.pageSecondFactorEnrolPost())},
		{"POST", "/account/second-factor/password", s.pageAuthOwing(s.pageSecondFactorPasswordPost())},
		{"POST", "/account/profile", s.pageAuth(s.pageAccountProfilePost())},
		{"POST", "/account/password", s.pageAuth(s.pageAccountPasswordPost())},
		{"POST", "/account/sessions/{id}/revoke", s.pageAuth(s.pageRevokeSessionPost())},
		{"POST", "/account/sessions/revoke-others", s.pageAuth(s.pageRevokeOthersPost())},

		// Pages: staff console.
		{"GET", "/admin", s.pageRole(s.pageAdmin(), staffRoles...)},
		{"GET", "/admin/outbox", s.pageRole(s.pageOutbox(), "admin", "privacy", "support")},
		{"GET", "/admin/outbox/{id}", s.pageRole(s.pageOutboxMessage(), "admin", "privacy", "support")},
		{"GET", "/admin/audit", s.pageRole(s.pageAudit(), "admin", "privacy")},

		// Demo site (development only, when the operator ships one).
		{"GET", "/demo/", s.page(s.handleDemo())},

		// Consent, newsletters and notices.
		{"GET", "/.well-known/gpc.json", s.api(s.handleGPCStatement())},
		{"GET", "/.well-known/steward/receipt-key", s.api(s.handleReceiptKey())},
		{"GET", "/api/v1/me/consents", s.apiAuth(s.handleMyConsents())},
		{"PUT", "/api/v1/me/consents/{purpose}", s.apiAuth(s.handlePutConsent())},
		{"GET", "/api/v1/me/policy-changes", s.apiAuth(s.handlePolicyChanges())},
		{"POST", "/api/v1/me/policy-changes/{version}/acceptance", s.apiAuth(s.handleAcceptPolicy())},
		{"GET", "/api/v1/me/newsletters", s.apiAuth(s.handleMyNewsletters())},
		{"PUT", "/api/v1/me/newsletters/{list}", s.apiAuth(s.handleMySubscribe())},
		{"DELETE", "/api/v1/me/newsletters/{list}", s.apiAuth(s.handleMyUnsubscribe())},
		{"GET", "/api/v1/newsletters", s.api(s.handleNewsletters())},
		{"POST", "/api/v1/newsletters/{list}/subscriptions", s.api(s.handleSubscribe())},
		{"POST", "/api/v1/admin/newsletters", s.apiRole(s.handleCreateList(), "admin")},
		{"GET", "/api/v1/admin/newsletters/{list}/campaigns", s.apiRole(s.handleCampaigns(), "admin")},
		{"POST", "/api/v1/admin/newsletters/{list}/campaigns", s.apiRole(s.handleSendCampaign(), "admin")},
		{"POST", "/api/v1/admin/newsletters/unsubscriptions", s.apiRole(s.handleStaffUnsubscribe(), "admin", "support")},
		{"GET", "/api/v1/admin/notices", s.apiRole(s.handleNotices(), "admin", "privacy")},
		{"POST", "/api/v1/admin/notices", s.apiRole(s.handleBroadcast(), "admin", "privacy")},
		{"GET", "/newsletters/confirm", s.page(s.pageConfirm())},
		{"POST", "/newsletters/confirm", s.page(s.pageConfirmPost())},
		{"GET", "/newsletters/unsubscribe", s.page(s.pageUnsubscribe())},
		{"POST", "/newsletters/unsubscribe", s.page(s.handleUnsubscribePost())},
		{"GET", "/newsletters/preferences", s.page(s.pagePreferences())},
		{"POST", "/newsletters/preferences", s.page(s.pagePreferencesPost())},
		{"GET", "/newsletters/t/open", s.page(s.handleTrackOpen())},
		{"GET", "/newsletters/t/click", s.page(s.handleTrackClick())},
		{"GET", "/account/consents", s.pageAuth(s.pageConsents())},
		{"POST", "/account/consents/{purpose}", s.pageAuth(s.pageConsentPost())},
		{"GET", "/account/consents/receipts/{id}", s.pageAuth(s.pageReceipt())},
		{"POST", "/account/newsletters/{list}", s.pageAuth(s.pageNewsletterPost())},
		{"POST", "/account/policy-acceptance", s.pageAuth(s.pageAcceptPolicyPost())},
		{"GET", "/admin/newsletters", s.pageRole(s.pageNewsletterAdmin(), "admin", "privacy", "support")},
		{"POST", "/admin/newsletters/{list}/campaigns", s.pageRole(s.pageCampaignPost(), "admin")},
		{"POST", "/admin/newsletters/unsubscribe", s.pageRole(s.pageStaffUnsubscribePost(), "admin", "support")},
		{"POST", "/admin/notices", s.pageRole(s.pageBroadcastPost(), "admin", "privacy")},

		// Rights requests, the privacy centre and the staff queue.
		{"GET", "/api/v1/me/data", s.apiAuth(s.handleMyData())},
		{"POST", "/api/v1/me/requests", s.apiAuth(s.handleFileMine())},
		{"GET", "/api/v1/me/requests", s.apiAuth(s.handleMyRequests())},
		{"GET", "/api/v1/me/requests/{id}", s.apiAuth(s.handleMyRequest())},
		{"GET", "/api/v1/me/requests/{id}/download", s.apiAuth(s.handleMyDownload())},
		{"POST", "/api/v1/requests", s.api(s.handleFileByEmail())},
		{"POST", "/api/v1/requests/{id}/verify", s.api(s.handleVerifyRequest())},
		{"GET", "/api/v1/requests/{id}", s.api(s.handleRequestByToken())},
		{"GET", "/api/v1/requests/{id}/download", s.api(s.handleDownloadByToken())},
		{"GET", "/api/v1/admin/requests", s.apiRole(s.handleQueue(), "privacy", "admin")},
		{"GET", "/api/v1/admin/requests/{id}", s.apiRole(s.handleStaffRequest(), "privacy", "admin")},
		{"POST", "/api/v1/admin/requests/{id}/approve", s.apiRole(s.handleDecision("approve"), "privacy", "admin")},
		{"POST", "/api/v1/admin/requests/{id}/refuse", s.apiRole(s.handleDecision("refuse"), "privacy", "admin")},
		{"POST", "/api/v1/admin/requests/{id}/extend", s.apiRole(s.handleDecision("extend"), "privacy", "admin")},
		{"POST", "/api/v1/admin/subjects/{id}/under-age", s.apiRole(s.handleUnderAge(), "privacy", "admin")},
		{"GET", "/account/privacy", s.pageAuth(s.pagePrivacyCentre())},
		{"POST", "/account/privacy/requests", s.pageAuth(s.pagePrivacyRequestPost())},
		{"GET", "/account/privacy/requests/{id}/download", s.pageAuth(s.handleMyDownload())},
		{"GET", "/privacy/request", s.page(s.pagePublicRequest())},
		{"POST", "/privacy/request", s.page(s.pagePublicRequestPost())},
		{"POST", "/privacy/request/{id}/verify", s.page(s.pagePublicVerifyPost())},
		{"POST", "/privacy/request/{id}/status", s.page(s.pagePublicStatusPost())},
		{"POST", "/privacy/request/{id}/download", s.page(s.pagePublicDownloadPost())},
		{"GET", "/admin/requests", s.pageRole(s.pageAdminRequests(), "admin", "privacy")},
		{"GET", "/admin/requests/{id}", s.pageRole(s.pageAdminRequest(), "admin", "privacy")},
		{"POST", "/admin/requests/{id}/approve", s.pageRole(s.pageAdminDecisionPost("approve"), "admin", "privacy")},
		{"POST", "/admin/requests/{id}/refuse", s.pageRole(s.pageAdminDecisionPost("refuse"), "admin", "privacy")},
		{"POST", "/admin/requests/{id}/extend", s.pageRole(s.pageAdminDecisionPost("extend"), "admin", "privacy")},
		{"POST", "/admin/subjects/under-age", s.pageRole(s.pageUnderAgePost(), "admin", "privacy")},

		// Retention: the sweep's dry run and legal holds.
		{"GET", "/api/v1/admin/retention", s.apiRole(s.handleRetentionPlan(), "privacy", "admin")},
		{"GET", "/api/v1/admin/holds", s.apiRole(s.handleHolds(), "privacy", "admin")},
		{"POST", "/api/v1/admin/holds", s.apiRole(s.handlePlaceHold(), "privacy")},
		{"POST", "/api/v1/admin/holds/{id}/review", s.apiRole(s.handleReviewHold(), "privacy")},
		{"POST", "/api/v1/admin/holds/{id}/lift", s.apiRole(s.handleLiftHold(), "privacy")},
		{"GET", "/admin/retention", s.pageRole(s.pageRetention(), "admin", "privacy")},
		{"POST", "/admin/holds", s.pageRole(s.pagePlaceHoldPost(), "privacy")},
		{"POST", "/admin/holds/{id}/review", s.pageRole(s.pageReviewHoldPost(), "privacy")},
		{"POST", "/admin/holds/{id}/lift", s.pageRole(s.pageLiftHoldPost(), "privacy")},

		// What members post: threads, their items and files, reports,
		// moderation.
		{"GET", "/api/v1/threads/{site}", s.api(s.handleThread())},
		{"POST", "/api/v1/threads/{site}/comments", s.api(s.handleGuestComment())},
		{"OPTIONS", "/api/v1/threads/{site}/comments", s.api(s.handleCommentsPreflight())},
		{"GET", "/comments.js", s.page(s.handleCommentsJS())},
		{"GET", "/comments/confirm", s.page(s.pageConfirmComment())},
		{"POST", "/comments/confirm", s.page(s.pageConfirmCommentPost())},
		{"GET", "/api/v1/me/content", s.apiAuth(s.handleMyContent())},
		{"POST", "/api/v1/me/content", s.apiAuth(s.handlePostContent())},
		{"PATCH", "/api/v1/me/content/{id}", s.apiAuth(s.handleEditContent())},
		{"DELETE", "/api/v1/me/content/{id}", s.apiAuth(s.handleDeleteContent())},
		{"POST", "/api/v1/me/content/{id}/files", s.apiAuth(s.handleUpload())},
		{"PUT", "/api/v1/me/picture", s.apiAuth(s.handlePutPicture())},
		{"PUT", "/api/v1/me/content-settings", s.apiAuth(s.handleContentSettings())},
		{"DELETE", "/api/v1/me/picture", s.apiAuth(s.handleDeletePicture())},
		{"GET", "/api/v1/files/{id}", s.api(s.handleFile(false))},
		{"GET", "/api/v1/files/{id}/thumbnail", s.api(s.handleFile(true))},
		{"POST", "/api/v1/content/{id}/reports", s.api(s.handleReportItem())},
		{"GET", "/api/v1/admin/moderation", s.apiRole(s.handleModerationQueue(), "moderator")},
		{"POST", "/api/v1/admin/moderation/{id}", s.apiRole(s.handleModerate(), "moderator")},
		{"GET", "/account/content", s.pageAuth(s.pageMyContent())},
		{"POST", "/account/content/{id}/visibility", s.pageAuth(s.pageContentVisibilityPost())},
		{"POST", "/account/content/{id}/delete", s.pageAuth(s.pageContentDeletePost())},
		{"POST", "/account/content/settings", s.pageAuth(s.pageContentSettingsPost())},
		{"GET", "/admin/moderation", s.pageRole(s.pageModeration(), "moderator")},
		{"POST", "/admin/moderation/{id}", s.pageRole(s.pageModeratePost(), "moderator")},

		// The support desk: members' requests and their exchanges (with
		// files), requests by email, the staff desk. Quality reviewers read
		// threads and recordings; only support staff write. Admin holds
		// every role here, and the door still refuses a purpose its role
		// lacks in the policy.
		{"GET", "/api/v1/me/support", s.apiAuth(s.handleMySupport())},
		{"POST", "/api/v1/me/support", s.apiAuth(s.handleOpenSupport())},
		{"GET", "/api/v1/me/support/{id}", s.apiAuth(s.handleMySupportThread())},
		{"POST", "/api/v1/me/support/{id}/messages", s.apiAuth(s.handleSupportReply())},
		{"GET", "/api/v1/me/support-files/{id}", s.apiAuth(s.handleMySupportFile())},
		{"POST", "/api/v1/support", s.api(s.handlePublicSupport())},
		{"GET", "/api/v1/admin/support", s.apiRole(s.handleSupportQueue(), "support", "quality")},
		{"POST", "/api/v1/admin/support/phone", s.apiRole(s.handleSupportPhone(), "support")},
		{"GET", "/api/v1/admin/support/{id}", s.apiRole(s.handleStaffSupportThread(), "support", "quality")},
		{"GET", "/api/v1/admin/support/{id}/requester", s.apiRole(s.handleSupportRequester(), "support", "quality")},
		{"POST", "/api/v1/admin/support/{id}/answers", s.apiRole(s.handleSupportAnswer(), "support")},
		{"POST", "/api/v1/admin/support/{id}/recordings", s.apiRole(s.handleSupportRecording(), "support")},
		{"POST", "/api/v1/admin/support/{id}/status", s.apiRole(s.handleSupportStatus(), "support")},
		{"POST", "/api/v1/admin/support/{id}/assign", s.apiRole(s.handleSupportAssign(), "support")},
		{"GET", "/api/v1/admin/support-files/{id}", s.apiRole(s.handleStaffSupportFile(), "support", "quality")},
		{"GET", "/account/support", s.pageAuth(s.pageMySupport())},
		{"POST", "/account/support", s.pageAuth(s.pageOpenSupportPost())},
		{"GET", "/account/support/{id}", s.pageAuth(s.pageMySupportThread())},
		{"POST", "/account/support/{id}/messages", s.pageAuth(s.pageSupportReplyPost())},
		{"GET", "/account/support/files/{id}", s.pageAuth(s.pageMySupportFile())},
		{"GET", "/support", s.page(s.pagePublicSupport())},
		{"POST", "/support", s.page(s.pagePublicSupportPost())},
		{"GET", "/support/confirm", s.page(s.pageConfirmSupport())},
		{"POST", "/support/confirm", s.page(s.pageConfirmSupportPost())},
		{"GET", "/admin/support", s.pageRole(s.pageSupportQueue(), "support", "quality")},
		{"POST", "/admin/support/phone", s.pageRole(s.pageSupportPhonePost(), "support")},
		{"GET", "/admin/support/{id}", s.pageRole(s.pageStaffSupportThread(), "support", "quality")},
		{"POST", "/admin/support/{id}/answers", s.pageRole(s.pageSupportAnswerPost(), "support")},
		{"POST", "/admin/support/{id}/recordings", s.pageRole(s.pageSupportRecordingPost(), "support")},
		{"POST", "/admin/support/{id}/status", s.pageRole(s.pageSupportStatusPost(), "support")},
		{"POST", "/admin/support/{id}/assign", s.pageRole(s.pageSupportAssignPost(), "support")},
		{"GET", "/admin/support/files/{id}", s.pageRole(s.pageStaffSupportFile(), "support", "quality")},

		// Analytics.
		{"GET", "/tracker.js", s.page(s.handleTracker())},
		{"POST", "/api/v1/collect", s.api(s.handleCollect())},
		{"OPTIONS", "/api/v1/collect", s.api(s.handleCollectPreflight())},
		{"GET", "/api/v1/trends", s.api(s.handleTrends())},
		{"GET", "/api/v1/admin/analytics/{report}", s.apiRole(s.handleReport(), "admin", "analyst")},
		{"GET", "/admin/analytics", s.pageRole(s.pageAnalytics(), "admin", "analyst")},

		// Disclosures: a member's order through a partner brand and what
		// went where; the staff register, deliveries and legal requests;
		// recipients' own endpoints; the public transparency report.
		{"POST", "/api/v1/me/partner-orders", s.apiAuth(s.handlePartnerOrder())},
		{"GET", "/api/v1/me/disclosures", s.apiAuth(s.handleMyDisclosures())},
		{"GET", "/api/v1/admin/disclosures", s.apiRole(s.handleDisclosureLog(), "privacy", "admin")},
		{"GET", "/api/v1/admin/recipients", s.apiRole(s.handleRecipients(), "privacy", "admin")},
		{"GET", "/api/v1/admin/deliveries", s.apiRole(s.handleDeliveries(), "privacy", "admin")},
		{"GET", "/api/v1/admin/deliveries/{id}", s.apiRole(s.handleDelivery(), "privacy", "admin")},
		{"POST", "/api/v1/admin/deliveries/{id}/told", s.apiRole(s.handleToldByHand(), "privacy")},
		{"GET", "/api/v1/admin/requests/{id}/recipients", s.apiRole(s.handleRequestRecipients(), "privacy", "admin")},
		{"GET", "/api/v1/admin/legal-requests", s.apiRole(s.handleLegalRequests(), "privacy")},
		{"POST", "/api/v1/admin/legal-requests", s.apiRole(s.handleRecordLegalRequest(), "privacy")},
		{"GET", "/api/v1/admin/legal-requests/{id}", s.apiRole(s.handleLegalRequest(), "privacy")},
		{"POST", "/api/v1/admin/legal-requests/{id}/decision", s.apiRole(s.handleDecideLegalRequest(), "privacy")},
		{"POST", "/api/v1/admin/legal-requests/{id}/notification", s.apiRole(s.handleLegalNotification(), "privacy")},
		{"POST", "/api/v1/admin/legal-requests/{id}/disclosures", s.apiRole(s.handleLegalDisclosure(), "privacy")},
		{"POST", "/api/v1/recipients/{id}/acknowledgements", s.api(s.handleRecipientAck())},
		{"GET", "/api/v1/recipients/{id}/events", s.api(s.handleRecipientEvents())},
		{"GET", "/api/v1/transparency", s.api(s.handleTransparency())},
		{"GET", "/transparency", s.page(s.pageTransparency())},
		{"GET", "/admin/disclosures", s.pageRole(s.pageAdminDisclosures(), "privacy", "admin")},
		{"POST", "/admin/disclosures/deliveries/{id}/told", s.pageRole(s.pageToldByHandPost(), "privacy")},
		{"GET", "/admin/legal-requests", s.pageRole(s.pageAdminLegal(), "privacy")},
		{"POST", "/admin/legal-requests", s.pageRole(s.pageRecordLegalPost(), "privacy")},
		{"GET", "/admin/legal-requests/{id}", s.pageRole(s.pageAdminLegalRequest(), "privacy")},
		{"POST", "/admin/legal-requests/{id}/decision", s.pageRole(s.pageLegalActionPost("decision"), "privacy")},
		{"POST", "/admin/legal-requests/{id}/notification", s.pageRole(s.pageLegalActionPost("notification"), "privacy")},
		{"POST", "/admin/legal-requests/{id}/disclosures", s.pageRole(s.pageLegalActionPost("disclosed"), "privacy")},
	}
}
