-- Acceptances of policy versions are subject state now: module subject
-- (which migrates before this one) created subject_policy_acceptances.
INSERT INTO subject_policy_acceptances (subject_id, policy_version, policy_hash, method, ua_family, network, accepted_at)
	SELECT subject_id, policy_version, policy_hash, method, ua_family, network, accepted_at FROM policy_acceptances;

DROP TABLE policy_acceptances;
