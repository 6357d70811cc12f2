"""The sign-in page, the OpenID Connect round trip and sign-out (docs/sign-in.md).

The start and the callback need no session of the portal yet; everything else of the
flow lives in the browser's session (sessions_app/identity/session.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView, redirect_to_login
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sessions_app.access import ActionNotAllowed
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.identity import invitations, mapping, services
from sessions_app.identity import provider as oidc
from sessions_app.identity import session as state
from sessions_app.identity.config import (
    AddressNotAllowed,
    ProviderSettings,
    password_sign_in,
    provider_settings,
)
from sessions_app.models import Invitation, UsedNonce

log = logging.getLogger(__name__)

BACKEND = "sessions_app.identity.backends.PasswordBackend"
REFUSED_PAGE = "registration/oidc_refused.html"
# A nonce is accepted once; it is remembered longer than any ID token lives.
NONCE_SECONDS = 24 * 3600


@method_decorator(login_not_required, name="dispatch")
class SignInView(LoginView):
    """Django's sign-in page, with the provider's button and passwords that can be off."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        provider = provider_settings()
        context["provider_name"] = provider.name if provider else ""
        context["password_sign_in"] = password_sign_in()
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not password_sign_in():
            context = self.get_context_data(form=self.get_form_class()())
            context["refusal"] = "Passwords are turned off here; sign in with the button below."
            return render(request, str(self.template_name), context, status=403)
        return super().post(request, *args, **kwargs)


def _provider_or_404() -> ProviderSettings:
    provider = provider_settings()
    if provider is None:
        raise Http404("Single sign-on is not set up.")
    return provider


def _callback_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("oidc-callback"))


def _refuse(
    request: HttpRequest, message: str, reason: str, *, status: int = 403, provider: str = ""
) -> HttpResponse:
    audit.record(
        AuditAction.AUTH_SIGN_IN_FAILED,
        actor_label=provider or "identity provider",
        details={"method": "oidc", "reason": reason},
        request=request,
    )
    log.info("provider sign-in refused: %s", reason)
    return render(
        request,
        REFUSED_PAGE,
        {"message": message, "reason": reason, "password_sign_in": password_sign_in()},
        status=status,
    )


@login_not_required
@never_cache
@require_GET
def oidc_start(request: HttpRequest) -> HttpResponse:
    """Send the browser to the provider, remembering state, nonce and PKCE verifier."""
    provider = _provider_or_404()
    next_url = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    try:
        auth = oidc.authorization_request(provider, _callback_uri(request))
    except (oidc.SignInRefused, AddressNotAllowed) as exc:
        return _refuse(request, str(exc), getattr(exc, "reason", "address_not_allowed"), status=502)
    state.remember_pending(request.session, auth.state, auth.nonce, auth.code_verifier, next_url)
    return redirect(auth.url)


def _nonce_first_use(nonce: str) -> bool:
    now = timezone.now()
    UsedNonce.objects.filter(created_at__lt=now - dt.timedelta(seconds=NONCE_SECONDS)).delete()
    try:
        with transaction.atomic():
            UsedNonce.objects.create(
                digest=hashlib.sha256(nonce.encode()).hexdigest(), created_at=now
            )
    except IntegrityError:
        return False
    return True


@login_not_required
@never_cache
@require_GET
def oidc_callback(request: HttpRequest) -> HttpResponse:
    provider = _provider_or_404()
    pending = state.take_pending(request.session, request.GET.get("state", ""))
    if pending is None:
        return _refuse(
            request,
            "This sign-in answer was used already, expired, or did not start in this browser "
            "(its state is unknown); start again.",
            "unknown_state",
            status=400,
        )
    if request.GET.get("error"):
        description = request.GET.get("error_description") or request.GET["error"]
        return _refuse(
            request,
            f"The identity provider did not sign you in: {description[:300]}",
            "provider_error",
        )
    code = request.GET.get("code", "")
    if not code:
        return _refuse(request, "The identity provider sent no code.", "no_code", status=400)
    try:
        token = oidc.exchange_code(
            provider,
            code=code,
            code_verifier=pending["verifier"],
            redirect_uri=_callback_uri(request),
        )
        claims = oidc.verify_id_token(provider, token.get("id_token", ""), nonce=pending["nonce"])
        if not _nonce_first_use(pending["nonce"]):
            raise oidc.SignInRefused(
                "This ID token was used for a sign-in already (its nonce was seen); start again.",
                "nonce_reused",
            )
        rules = mapping.parse(provider.group_roles)
        groups = mapping.groups_of(claims, provider.groups_claim)
        user = services.identity_sign_in(issuer=provider.issuer, claims=claims, groups=groups)
    except mapping.MappingError as exc:
        log.error("%s", exc)
        return _refuse(
            request,
            "The portal's group mapping is misconfigured (OIDC_GROUP_ROLES); ask its operator.",
            "mapping_error",
            status=500,
        )
    except oidc.SignInRefused as exc:
        status = 502 if exc.reason == "provider_unavailable" else 403
        return _refuse(request, str(exc), exc.reason, status=status)
    except AddressNotAllowed as exc:
        return _refuse(request, str(exc), "address_not_allowed", status=502)
    # The one sign-in entry (audit/signals.py) says how the person signed in.
    request.portal_sign_in_details = {  # type: ignore[attr-defined]
        "method": "oidc",
        "issuer": provider.issuer,
        "subject": str(claims["sub"])[:255],
    }
    login(request, user, backend=BACKEND)
    state.remember_sign_in(request.session, issuer=provider.issuer, token=token, claims=claims)
    for change in services.provider_roles_apply(
        user=user, groups=groups, rules=rules, request=request
    ):
        messages.info(request, change)
    return redirect(pending["next"] or reverse("sessions_app:session-list"))


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Sign out here and, when the provider allows it, at the provider too."""
    info = state.signed_in(request.session)
    provider = provider_settings()
    url = ""
    if info is not None and provider is not None and info.get("issuer") == provider.issuer:
        url = oidc.end_session_url(
            provider,
            id_token=state.unseal(str(info.get("id_token") or "")),
            post_logout_redirect_uri=request.build_absolute_uri(reverse("login")),
        )
    logout(request)
    if not url:
        return redirect("login")
    # A form's redirect to another origin would break the page's form-action policy, so a
    # page sends the browser on (docs/sign-in.md).
    return render(
        request,
        "registration/signing_out.html",
        {"url": url, "provider_name": provider.name if provider else ""},
    )


JOIN_PAGE = "sessions_app/identity/join.html"


def _join_problem(invitation: Invitation | None) -> tuple[int, str, str] | None:
    """Why the link cannot be answered: (status, title, sentence), or None when it can."""
    if invitation is None:
        return 404, "Unknown invitation", "This invitation link is not valid; check the email."
    if invitation.status == Invitation.Status.ACCEPTED:
        return 410, "Invitation used", "This invitation was accepted already; the link worked once."
    if invitation.status != Invitation.Status.PENDING:
        return (
            410,
            "Invitation closed",
            f"This invitation was {invitation.get_status_display().lower()}; "
            "ask a team admin for a new one.",
        )
    if not invitation.is_open():
        return (
            410,
            "Invitation expired",
            "This invitation has expired; ask a team admin for a new one.",
        )
    return None


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def invitation_join(request: HttpRequest, token: str) -> HttpResponse:
    """The link of an invitation email: a clear page when it cannot be used any more."""
    invitation = invitations.invitation_for_token(token)
    problem = _join_problem(invitation)
    if problem is not None:
        status, title, sentence = problem
        return render(
            request, JOIN_PAGE, {"problem": sentence, "problem_title": title}, status=status
        )
    assert invitation is not None
    context: dict[str, Any] = {"invitation": invitation}
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            if request.POST.get("answer") == "decline":
                invitations.invitation_decline_by_link(
                    actor=request.user, invitation=invitation, request=request
                )
                messages.success(request, f"You declined the invitation to {invitation.team.name}.")
                return redirect("sessions_app:team-list")
            membership = invitations.invitation_accept_by_link(
                actor=request.user, invitation=invitation, request=request
            )
        except ActionNotAllowed as exc:
            context["refusal"] = str(exc)
            return render(request, JOIN_PAGE, context, status=403)
        messages.success(
            request, f"You joined {invitation.team.name} as {membership.get_role_display()}."
        )
        return redirect("sessions_app:team-detail", invitation.team.slug)
    return render(request, JOIN_PAGE, context)
