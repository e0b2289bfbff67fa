"""The index of SECURITY.md: every table row and every "Delivery promises" bullet -> the tests that prove it.

`test_every_indexed_test_exists` imports each named module and looks the function up, so a renamed or
deleted test breaks this file instead of silently leaving a row unproven. When ../shared/SECURITY.md is
present (the repository's sibling), `test_every_security_row_is_indexed` checks that each of its rows
and bullets matches exactly one index entry (the entry is the start of the row's first cell), and that
no entry is stale.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

INBOX = "tests.federation.test_inbox"
SIG = "tests.federation.test_signatures"
SEC_SIG = "tests.security.test_inbox_signatures"
HOSTILE = "tests.security.test_hostile_input"
REL = "tests.security.test_reliability"
TRANSPORT = "tests.federation.test_transport"
NETGUARD = "tests.federation.test_netguard"
SERVING = "tests.federation.test_serving"
MEDIA = "tests.server.test_media"
OAUTH = "tests.server.test_oauth"
FORGERY = "tests.security.test_inbox_forgery"
BODY = "tests.security.test_inbox_body"
FETCH = "tests.security.test_fetching_hostile"
MATRIX = "tests.security.test_serving_matrix"
SCOPES = "tests.security.test_scopes"
GARBAGE = "tests.security.test_garbage_input"
CSRF = "tests.security.test_csrf_forms"
TOMB = "tests.security.test_tombstones"

# (section, the start of the row's first cell, [module::test, ...])
INDEX: list[tuple[str, str, list[str]]] = [
    # -- Inbox --------------------------------------------------------------------------------------
    ("Inbox", "no `Signature` header", [
        f"{INBOX}::test_unsigned_is_401", f"{SEC_SIG}::test_garbage_signature_header_is_401"]),
    ("Inbox", "signature by a valid key that does not belong", [
        f"{INBOX}::test_key_of_another_actor_is_401",
        f"{HOSTILE}::test_activity_claiming_our_domain_is_refused_and_stores_nothing",
        f"{SIG}::test_signature_by_another_key_is_refused",
        f"{SEC_SIG}::test_actor_on_another_host_than_the_key_is_401_and_fetches_nothing"]),
    ("Inbox", "`activity.id` host differs", [f"{INBOX}::test_activity_id_on_another_host_is_refused"]),
    ("Inbox", "signed header set too weak", [
        f"{INBOX}::test_weak_header_set_is_401",
        f"{SEC_SIG}::test_weak_or_odd_cavage_signature_is_401_and_stores_nothing",
        f"{SIG}::test_vector_verifies_or_is_refused_as_expected", f"{SIG}::test_rfc9421_coverage_rules",
        f"{SEC_SIG}::test_signed_header_missing_from_the_request_is_401"]),
    ("Inbox", "`Digest` (draft-cavage) or `Content-Digest`", [
        f"{INBOX}::test_digest_mismatch_is_401", f"{SEC_SIG}::test_rfc9421_content_digest_mismatch_is_401",
        f"{SEC_SIG}::test_weak_or_odd_cavage_signature_is_401_and_stores_nothing",
        f"{SIG}::test_rfc9421_content_digest_must_have_sha256", f"{SIG}::test_digest_that_is_not_base64_is_refused",
        f"{SEC_SIG}::test_signed_header_missing_from_the_request_is_401",
        f"{SEC_SIG}::test_replayed_signature_is_a_no_op_and_cannot_carry_anything_else"]),
    ("Inbox", "`Date` more than 1 h in the future", [
        f"{INBOX}::test_stale_date_is_401", f"{SEC_SIG}::test_hs2019_with_expires_passed_is_401",
        f"{SIG}::test_rfc9421_clock_window_and_expiry",
        f"{SEC_SIG}::test_clock_skew_both_ways_is_accepted_inside_the_window_and_refused_outside"]),
    ("Inbox", "keyId host is a prefix/suffix look-alike", [
        f"{INBOX}::test_look_alike_and_non_partner_hosts_are_401_without_fetch",
        "tests.models.test_queue::test_hosts_are_normalized_exactly",
        f"{SEC_SIG}::test_look_alike_key_hosts_are_401_before_any_lookup",
        f"{SEC_SIG}::test_hosts_are_compared_after_normalisation"]),
    ("Inbox", "sender's domain is not a partner", [
        f"{INBOX}::test_look_alike_and_non_partner_hosts_are_401_without_fetch",
        f"{INBOX}::test_partner_removed_is_401",
        "tests.federation.test_actors::test_non_partner_is_refused_before_any_request",
        f"{SEC_SIG}::test_look_alike_key_hosts_are_401_before_any_lookup"]),
    ("Inbox", "a blocked actor on a partner", [f"{INBOX}::test_blocked_actor_gets_202_and_nothing_is_stored"]),
    ("Inbox", "the same activity id delivered twice", [
        f"{INBOX}::test_accepted_activity_is_stored_once_and_processed",
        f"{SEC_SIG}::test_replayed_signature_is_a_no_op_and_cannot_carry_anything_else"]),
    ("Inbox", "body over the cap", [
        f"{INBOX}::test_body_over_cap_is_413", f"{BODY}::test_chunked_body_over_the_cap_is_413_and_stores_nothing",
        f"{BODY}::test_gzip_bomb_is_cut_at_the_cap_and_stores_nothing"]),
    ("Inbox", "deeply nested or huge-array JSON", [
        f"{INBOX}::test_deep_or_huge_json_is_400", "tests.federation.test_dispatch::test_jsonguard_refuses",
        f"{SEC_SIG}::test_activity_without_id_or_actor_is_refused",
        f"{BODY}::test_hundred_thousand_deep_array_and_huge_array_are_400_with_bounded_memory",
        f"{FORGERY}::test_nul_or_lone_surrogate_in_an_activity_is_400_and_stores_nothing"]),
    ("Inbox", "`Accept` of a Follow that was never sent", [
        f"{INBOX}::test_accept_of_a_follow_never_sent_creates_nothing",
        f"{INBOX}::test_accept_of_a_follow_sent_to_someone_else_is_ignored",
        f"{FORGERY}::test_forged_accepts_and_rejects_change_no_follow"]),
    ("Inbox", "`Delete`/`Update` of an object or actor owned by someone else", [
        f"{INBOX}::test_delete_or_update_of_someone_elses_note_is_a_no_op",
        f"{FORGERY}::test_dogwood_cannot_update_or_delete_cedars_note_or_profile",
        f"{FORGERY}::test_a_partner_cannot_update_or_delete_our_own_posts_or_residents",
        f"{TOMB}::test_a_tombstone_by_someone_else_does_not_stop_the_authors_create"]),
    ("Inbox", "`Announce`/`Create` whose embedded object", [
        f"{INBOX}::test_embedded_object_from_another_host_is_not_trusted"]),
    ("Inbox", "`Create` of a Note whose `attributedTo` host", [
        f"{INBOX}::test_note_attributed_to_another_host_is_refused",
        f"{FORGERY}::test_create_of_a_note_written_by_someone_else_stores_nothing"]),
    # -- Fetching -----------------------------------------------------------------------------------
    ("Fetching", "fetched document whose `id` differs", [
        f"{TRANSPORT}::test_id_mismatch_refused", f"{TRANSPORT}::test_missing_id_refused_unless_unchecked",
        "tests.federation.test_actors::test_id_mismatch_is_refused", f"{FETCH}::test_every_refused_answer_stores_nothing"]),
    ("Fetching", "response `Content-Type` not", [
        f"{TRANSPORT}::test_wrong_content_type_refused", f"{TRANSPORT}::test_plain_json_only_when_asked",
        f"{TRANSPORT}::test_activity_content_types_accepted", f"{FETCH}::test_every_refused_answer_stores_nothing"]),
    ("Fetching", "cross-host redirect", [
        f"{TRANSPORT}::test_cross_host_redirect_refused", f"{TRANSPORT}::test_scheme_change_redirect_refused",
        f"{TRANSPORT}::test_four_hops_refused", f"{TRANSPORT}::test_redirect_loop_refused",
        f"{TRANSPORT}::test_three_hops_followed", f"{FETCH}::test_every_refused_answer_stores_nothing"]),
    ("Fetching", "URL or redirect resolving to loopback", [
        f"{NETGUARD}::test_forbidden_addresses", f"{NETGUARD}::test_table_is_large_enough",
        f"{NETGUARD}::test_resolver_refuses_a_name_resolving_to_loopback",
        f"{NETGUARD}::test_resolver_refuses_when_any_answer_is_forbidden",
        f"{NETGUARD}::test_socket_factory_stops_a_connection_the_resolver_let_through",
        f"{NETGUARD}::test_resolver_allows_loopback_when_private_addresses_allowed",
        f"{TRANSPORT}::test_private_address_refused_before_connecting",
        f"{TRANSPORT}::test_name_rebound_to_loopback_refused", f"{TRANSPORT}::test_non_canonical_ipv4_refused",
        f"{FETCH}::test_guarded_fetch_of_a_private_address_sends_nothing_and_stores_nothing"]),
    ("Fetching", "response body over the cap", [
        f"{TRANSPORT}::test_oversized_streamed_body_aborted_early", f"{TRANSPORT}::test_oversized_declared_body_refused",
        f"{TRANSPORT}::test_slow_server_times_out", f"{TRANSPORT}::test_dripping_body_times_out",
        f"{TRANSPORT}::test_post_big_answer_is_cut", f"{TRANSPORT}::test_post_timeout",
        f"{FETCH}::test_every_refused_answer_stores_nothing"]),
    ("Fetching", "a remote URL that points at our own domain", [
        f"{HOSTILE}::test_remote_url_on_our_own_domain_is_local_and_never_fetched",
        f"{HOSTILE}::test_other_spellings_of_our_own_domain_are_never_fetched",
        f"{TRANSPORT}::test_local_hosts_never_fetched", "tests.federation.test_actors::test_local_urls_are_never_fetched",
        f"{TOMB}::test_our_post_under_other_spellings_of_our_host_is_found_and_never_fetched"]),
    # -- Serving ------------------------------------------------------------------------------------
    ("Serving", "unsigned GET of a post", [
        f"{SERVING}::test_unsigned_object_and_collections_are_401", f"{MATRIX}::test_each_post_visibility_against_each_caller",
        f"{MATRIX}::test_outboxes_and_collections_show_each_caller_only_its_share"]),
    ("Serving", "signed GET by an actor of a non-partner domain", [
        f"{SERVING}::test_non_partner_signature_is_404_without_any_lookup",
        f"{SERVING}::test_non_partner_known_actor_is_404", f"{MATRIX}::test_each_post_visibility_against_each_caller",
        f"{MATRIX}::test_outboxes_and_collections_show_each_caller_only_its_share"]),
    ("Serving", "signed GET of a followers-only or village-only post", [
        f"{SERVING}::test_private_post_needs_a_follower_of_the_author",
        f"{SERVING}::test_direct_post_needs_a_mention_on_the_host", f"{SERVING}::test_unlisted_post_is_never_served",
        f"{SERVING}::test_unknown_post_is_404_for_a_partner", f"{MATRIX}::test_each_post_visibility_against_each_caller",
        f"{TOMB}::test_a_deleted_post_is_410_only_when_it_was_public"]),
    ("Serving", "signed GET by an allowed follower", [
        f"{SERVING}::test_public_post_served_to_follower_host", f"{SERVING}::test_outbox_and_followers_for_a_partner",
        f"{MATRIX}::test_each_post_visibility_against_each_caller",
        f"{MATRIX}::test_outboxes_and_collections_show_each_caller_only_its_share"]),
    ("Serving", "unsigned GET of an actor", [
        f"{SERVING}::test_unsigned_actor_document_is_minimal",
        f"{SERVING}::test_non_partner_signed_actor_document_is_not_found",
        f"{SERVING}::test_bad_signature_gets_minimal_document",
        f"{MATRIX}::test_actor_documents_are_minimal_unless_a_partner_signs"]),
    ("Serving", "an uploaded file", [
        f"{MEDIA}::test_jpeg_is_oriented_and_loses_exif_gps_xmp_and_comment",
        f"{MEDIA}::test_png_webp_and_gif_keep_their_format", f"{MEDIA}::test_media_paths_that_name_no_file_are_404"]),
    # -- Client API and pages -------------------------------------------------------------------------
    ("Client", "HTML in a status or profile", [
        f"{HOSTILE}::test_sanitizer_vectors", f"{HOSTILE}::test_html_in_a_local_status_is_inert_in_api_and_stored",
        f"{HOSTILE}::test_html_in_a_profile_is_inert_in_api_and_stored",
        f"{HOSTILE}::test_remote_note_html_is_sanitized_before_it_is_stored",
        f"{HOSTILE}::test_remote_profile_html_is_sanitized_before_it_is_stored",
        "tests.federation.test_from_ap::test_content_is_sanitized",
        "tests.server.test_statuses::test_post_renders_mentions_tags_and_links_safely",
        "tests.server.test_accounts::test_update_display_name_and_note"]),
    ("Client", "wrong or expired token", [
        f"{HOSTILE}::test_wrong_revoked_or_scopeless_tokens_get_mastodon_errors_and_change_nothing",
        "tests.server.test_route_auth::test_every_protected_route_refuses_anonymous_and_scopeless_tokens",
        f"{OAUTH}::test_revoke_makes_the_token_fail_at_once", f"{OAUTH}::test_code_of_another_client_or_expired_is_refused",
        f"{SCOPES}::test_the_routes_own_scope_passes_and_the_opposite_scope_is_403",
        f"{SCOPES}::test_refused_calls_with_real_ids_and_bodies_change_no_row"]),
    ("Client", "guessing household codes", [
        f"{HOSTILE}::test_household_codes_have_at_least_60_bits",
        "tests.server.test_registration::test_failed_codes_are_limited_per_ip_but_successes_are_not",
        "tests.server.test_registration::test_failed_codes_are_limited_per_code_across_addresses",
        "tests.server.test_registration::test_every_failure_is_422_and_stores_nothing",
        "tests.server.test_pages::test_register_page_429_after_too_many_wrong_codes"]),
    ("Client", "API flood", [
        "tests.server.test_api_ratelimit::test_requests_past_the_limit_get_429_and_nothing_is_done",
        "tests.server.test_api_ratelimit::test_the_client_ip_is_limited_across_tokens",
        "tests.server.test_api_ratelimit::test_forwarded_addresses_count_only_behind_a_trusted_proxy",
        "tests.server.test_api_ratelimit::test_forwarded_addresses_are_ignored_from_untrusted_peers",
        "tests.security.test_ratelimit_headers::test_every_answer_carries_the_limit_and_the_last_is_429"]),
    ("Client", "an anonymous request to any route", [
        "tests.server.test_route_auth::test_only_routes_of_the_open_list_are_open",
        "tests.server.test_route_auth::test_every_protected_route_refuses_anonymous_and_scopeless_tokens",
        f"{SCOPES}::test_refused_calls_with_real_ids_and_bodies_change_no_row"]),
    ("Client", "image with GPS EXIF", [f"{MEDIA}::test_jpeg_is_oriented_and_loses_exif_gps_xmp_and_comment"]),
    ("Client", "image bomb", [
        f"{MEDIA}::test_refused_uploads_store_nothing", f"{MEDIA}::test_oversize_streamed_without_length_is_cut_at_16_mib",
        f"{MEDIA}::test_broken_multipart_bodies_are_refused"]),
    ("Client", "CSRF on the login and registration pages", [
        f"{OAUTH}::test_post_without_or_with_wrong_csrf_token_is_refused", f"{OAUTH}::test_csrf_cookie_flags",
        "tests.server.test_pages::test_register_page_without_csrf_token_is_refused",
        f"{CSRF}::test_every_form_refuses_a_forged_post_and_stores_nothing",
        f"{CSRF}::test_over_https_the_seed_cookie_is_host_only_and_a_tossed_cookie_is_refused"]),
    ("Client", "passwords", [
        f"{HOSTILE}::test_passwords_are_argon2id_and_never_logged",
        f"{OAUTH}::test_wrong_password_shows_the_page_again_and_issues_nothing",
        f"{OAUTH}::test_login_attempts_are_rate_limited_per_ip"]),
    # -- Delivery promises --------------------------------------------------------------------------
    ("Delivery", "Every outgoing delivery is a database row", [
        f"{REL}::test_kill_9_during_fan_out_loses_no_delivery",
        "tests.models.test_queue::test_a_lease_expires_so_a_dead_workers_rows_come_back",
        "tests.models.test_queue::test_concurrent_claims_take_each_row_once",
        f"{INBOX}::test_accepted_activity_is_stored_once_and_processed"]),
    ("Delivery", "Retries with jittered exponential backoff", [
        "tests.federation.test_retry::test_schedule_spans_about_two_days", "tests.federation.test_retry::test_jitter_spreads_delays",
        "tests.federation.test_retry::test_classify", "tests.federation.test_retry::test_parse_retry_after",
        "tests.federation.test_delivery::test_503_with_retry_after_reschedules_later",
        "tests.federation.test_delivery::test_refused_connection_backs_off", "tests.federation.test_delivery::test_410_is_permanent",
        f"{REL}::test_receiver_down_refused_then_503_then_timeout_gets_everything_when_back"]),
    ("Delivery", "An instance failing on 7 distinct days", [
        "tests.federation.test_delivery::test_seven_failure_days_make_unavailable_and_success_resets"]),
    ("Delivery", "A Delete that arrives before its Create", [
        "tests.federation.test_exchange::test_delete_before_create_is_remembered",
        f"{TOMB}::test_the_authors_delete_before_create_still_drops_the_create",
        f"{TOMB}::test_a_relayed_delete_of_a_note_not_arrived_leaves_the_authors_tombstone"]),
    ("Delivery", "Backups (`voisinage backup FILE`)", [
        "tests.cli.test_backup::test_backup_while_serving_restores_the_same_timelines",
        "tests.cli.test_backup::test_backup_errors_are_one_line"]),
]

# Issue 5's reliability items that are not a SECURITY.md row of their own.
EXTRA: list[tuple[str, list[str]]] = [
    ("SIGTERM: in-flight requests finish, workers release their claims, exit 0", [
        f"{REL}::test_sigterm_finishes_requests_and_releases_claims",
        "tests.federation.test_delivery::test_release_gives_back_claims"]),
    ("Garbage in any parameter, path or body: a 4xx with a JSON error, never a 500 or a traceback", [
        f"{GARBAGE}::test_garbage_ids_and_queries_on_every_route_are_4xx_json",
        f"{GARBAGE}::test_malformed_bodies_are_400_json_and_change_nothing",
        f"{GARBAGE}::test_wrong_types_nul_bytes_and_huge_numbers_are_never_a_500",
        f"{GARBAGE}::test_federation_paths_with_garbage_are_never_a_500"]),
]

SECURITY_MD = Path(__file__).resolve().parents[3] / "shared" / "SECURITY.md"


def all_named() -> list[str]:
    return sorted({t for _, _, tests in INDEX for t in tests} | {t for _, tests in EXTRA for t in tests})


def security_rows(text: str) -> list[str]:
    """The first cell of each table row (headers and separators left out) and each Delivery bullet."""
    rows: list[str] = []
    in_delivery = False
    for line in text.splitlines():
        if line.startswith("## "):
            in_delivery = line.strip() == "## Delivery promises"
            continue
        if line.startswith("|"):
            first = line.strip("|").split("|")[0].strip()
            if first in ("input", "request") or re.fullmatch(r"-+", first):
                continue
            rows.append(first)
        elif in_delivery and line.startswith("- "):
            rows.append(line[2:].strip())
    return rows


def test_index_is_large_enough() -> None:
    assert len(INDEX) >= 40
    assert all(tests for _, _, tests in INDEX)


@pytest.mark.parametrize("name", all_named())
def test_every_indexed_test_exists(name: str) -> None:
    module_name, function = name.split("::")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function, None)), f"{name} does not exist"
    assert function.startswith("test_")


def test_every_security_row_is_indexed() -> None:
    if not SECURITY_MD.exists():
        pytest.skip(f"{SECURITY_MD} is not next to the repository")
    rows = security_rows(SECURITY_MD.read_text())
    keys = [key for _, key, _ in INDEX]
    for row in rows:
        matches = [key for key in keys if row.startswith(key)]
        assert len(matches) == 1, f"SECURITY.md row {row[:70]!r} matches {matches} in the index"
    for key in keys:
        assert any(row.startswith(key) for row in rows), f"index entry {key!r} names no SECURITY.md row"
    assert len(rows) == len(INDEX)
