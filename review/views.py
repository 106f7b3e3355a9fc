"""The review pages: reviewers, liaisons and librarians under /staff/reviews/, coordinators under
/coordinator/<consortium>/reviews/. Thin: check who asks (review.access, the pages' decorators),
read or call review.scoring, answer."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from coordination.access import Coordinator
from coordination.views._page import context, staff_page
from libraries.models import StaffProfile
from review import access, statistics, transcript
from review.forms import CriterionFormSet, SettingsForm
from review.models import Criterion, Review, ReviewRoles, ReviewSettings
from review.roles import active_staff, roles_of, roles_set
from review.rubric import rubric, rubric_ensure, settings_of
from review.sampling import review_reassign
from review.scoring import review_mark_notable, review_submit
from routing.services.common import Refused
from routing.staff.views import staff_page as librarian_page

LIST_LIMIT = 200  # rows per list on a page: a year of a busy library's reviews
STATISTICS_MONTHS = 12


def _rows(reviews: QuerySet[Review]) -> list[Review]:
    return list(reviews.select_related("chat", "consortium", "library", "librarian__user", "reviewer__user",
                                       "reviewer__library")
                .order_by("-month", "due_at", "pk")[:LIST_LIMIT])


@require_GET
@librarian_page
def reviews_home(request: HttpRequest, profile: StaffProfile) -> HttpResponse:
    visible = access.visible(profile)
    roles = roles_of(profile)
    shared = settings_of(profile.library.consortium).share_with_librarian
    return render(request, "review/home.html", {
        "profile": profile, "section": "reviews", "now": timezone.now(), "roles": roles,
        "assigned": _rows(visible.filter(reviewer=profile)),
        "library_reviews": _rows(visible.filter(library_id=profile.library_id, submitted_at__isnull=False))
        if roles.liaison else None,
        "my_reviews": _rows(visible.filter(librarian=profile, submitted_at__isnull=False)) if shared else None,
        "notable_count": visible.filter(notable=True, submitted_at__isnull=False).count(),
    })


@require_GET
@librarian_page
def notable(request: HttpRequest, profile: StaffProfile) -> HttpResponse:
    found = _rows(access.visible(profile).filter(notable=True, submitted_at__isnull=False))
    return render(request, "review/notable.html", {
        "profile": profile, "section": "reviews",
        "reviews": [(r, transcript.question(r.chat)) for r in found],
    })


@require_http_methods(["GET", "POST"])
@librarian_page
def review_detail(request: HttpRequest, profile: StaffProfile, review_id: int) -> HttpResponse:
    review = access.review_for(profile, review_id)
    if review is None:
        raise Http404("no such review")
    criteria = rubric(review.consortium)
    errors: dict[str, list[str]] = {}
    values = {c.pk: "" for c in criteria}
    notes = {c.pk: "" for c in criteria}
    comment = ""
    if request.method == "POST" and not access.may_score(profile, review):
        # A liaison, a coordinator, or the reviewer once it is submitted: reading, never scoring.
        return render(request, "routing/staff/forbidden.html", {"profile": profile}, status=403)
    if request.method == "POST":
        values = {c.pk: request.POST.get(f"score-{c.pk}", "") for c in criteria}
        notes = {c.pk: request.POST.get(f"comment-{c.pk}", "") for c in criteria}
        comment = request.POST.get("comment", "")
        try:
            review_submit(profile, review.pk, timezone.now(), values=values, comments=notes, comment=comment)
        except Refused as e:
            errors = e.fields or {"": [e.detail]}
        else:
            messages.success(request, _("Review submitted: the library's liaisons have it."))
            return redirect("review-detail", review_id=review.pk)
        review.refresh_from_db()
    scores = [(s, s.criterion.label(s.value)) for s in review.scores.select_related("criterion")]
    return render(request, "review/detail.html", {
        "profile": profile, "section": "reviews", "review": review, "now": timezone.now(),
        "question": transcript.question(review.chat), "lines": transcript.lines(review.chat),
        "may_score": access.may_score(profile, review), "may_mark": access.may_mark_notable(profile, review),
        "form_rows": [(c, [(p, c.label(p), values[c.pk].strip() == str(p)) for p in range(1, c.scale + 1)],
                       values[c.pk], notes[c.pk], errors.get(c.name, [])) for c in criteria],
        "shared": settings_of(review.consortium).share_with_librarian,
        "comment": comment, "errors": errors, "comment_errors": errors.get("comment", []),
        "scores": scores,
    }, status=400 if errors else 200)


@require_POST
@librarian_page
def review_notable(request: HttpRequest, profile: StaffProfile, review_id: int) -> HttpResponse:
    try:
        review_mark_notable(profile, review_id, timezone.now(), notable=request.POST.get("notable") == "1")
    except Refused as e:
        if e.reason == "not_found":
            raise Http404("no such review") from e
        return render(request, "routing/staff/forbidden.html", {"profile": profile}, status=403)
    return redirect("review-detail", review_id=review_id)


def _roles(profile: StaffProfile) -> ReviewRoles:
    """The flags of a profile read with select_related("review_roles"): no query per row."""
    found: ReviewRoles | None = getattr(profile, "review_roles", None)
    return found or ReviewRoles(staff=profile)


# --- coordinators ---------------------------------------------------------------------------------


def _months_back(today: date, months: int) -> date:
    first = today.replace(day=1)
    for _month in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


@require_GET
@staff_page("coordinator")
def coordinator_reviews(request: HttpRequest, who: Coordinator) -> HttpResponse:
    consortium = who.consortium
    rubric_ensure(consortium)
    now = timezone.now()
    found = statistics.figures(consortium, now, since=_months_back(now.date(), STATISTICS_MONTHS))
    overdue = _rows(Review.objects.filter(consortium=consortium, submitted_at__isnull=True, due_at__lt=now))
    recent = _rows(Review.objects.filter(consortium=consortium, submitted_at__isnull=False))[:50]
    return render(request, "review/coordinator.html", context(
        who, "reviews", figures=found, overdue=overdue, recent=recent, now=now,
        settings=settings_of(consortium)))


@require_POST
@staff_page("coordinator")
def coordinator_reassign(request: HttpRequest, who: Coordinator, review_id: int) -> HttpResponse:
    try:
        review = review_reassign(consortium=who.consortium, review_id=review_id, now=timezone.now())
    except LookupError as e:
        raise Http404("no such review") from e
    except ValueError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("Given to %(name)s (%(library)s).") % {
            "name": review.reviewer.display_name, "library": review.reviewer.library.name})
    return redirect("review-coordinator", consortium_slug=who.consortium.slug)


@require_http_methods(["GET", "POST"])
@staff_page("coordinator")
def coordinator_settings(request: HttpRequest, who: Coordinator) -> HttpResponse:
    consortium = who.consortium
    rubric_ensure(consortium)
    current = ReviewSettings.objects.filter(consortium=consortium).first() or ReviewSettings(consortium=consortium)
    criteria = Criterion.objects.filter(consortium=consortium).order_by("position", "pk")
    form = SettingsForm(instance=current, prefix="s")
    formset = CriterionFormSet(queryset=criteria, prefix="c")
    staff = list(active_staff(consortium).select_related("user", "library", "review_roles")
                 .order_by("library__name", "user__first_name", "user__username"))
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "settings":
            form = SettingsForm(request.POST, instance=current, prefix="s")
            if form.is_valid():
                form.save()
                messages.success(request, _("Review settings saved."))
                return redirect("review-coordinator-settings", consortium_slug=consortium.slug)
        elif action == "rubric":
            formset = CriterionFormSet(request.POST, queryset=criteria, prefix="c")
            if formset.is_valid():
                with transaction.atomic():
                    for item in formset.save(commit=False):
                        item.consortium = consortium
                        item.save()
                messages.success(request, _("Rubric saved."))
                return redirect("review-coordinator-settings", consortium_slug=consortium.slug)
        elif action == "roles":
            ids = {p.pk for p in staff}
            roles_set(consortium, reviewers={int(v) for v in request.POST.getlist("reviewer") if v.isdigit()} & ids,
                      liaisons={int(v) for v in request.POST.getlist("liaison") if v.isdigit()} & ids)
            messages.success(request, _("Reviewers and liaisons saved."))
            return redirect("review-coordinator-settings", consortium_slug=consortium.slug)
        else:
            messages.error(request, _("Unknown action."))
        status = 400
    return render(request, "review/settings.html", context(
        who, "reviews", form=form, formset=formset, staff=[(p, _roles(p)) for p in staff]), status=status)
