"""cxplatform.db.bulk_set writes exactly the named fields of exactly the given rows (on
PostgreSQL as one UPDATE … FROM VALUES, elsewhere through bulk_update); cxplatform.db.Compiled
gives what its queryset gives, compiling it once."""
from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, DateTimeField, F, Q
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Customer, Identity
from cxplatform.db import AnyOf, Compiled, Param, bulk_set

pytestmark = pytest.mark.django_db


def test_bulk_set_writes_the_named_fields_of_the_given_rows_only():
    t = timezone.now().replace(microsecond=0)
    a, b, c = (Customer.objects.create(display_name=name) for name in ("A", "B", "C"))
    a.last_seen_at, a.display_name = t, "not written"
    b.last_seen_at = t - dt.timedelta(days=1)
    c.last_seen_at = t  # not passed: must stay as stored

    with CaptureQueriesContext(connection) as ctx:
        assert bulk_set(Customer, [a, b], ["last_seen_at"]) == 2

    assert len([q for q in ctx.captured_queries if q["sql"].startswith("UPDATE")]) == 1
    stored = {row.pk: row for row in Customer.objects.all()}
    assert stored[a.pk].last_seen_at == t and stored[a.pk].display_name == "A"
    assert stored[b.pk].last_seen_at == t - dt.timedelta(days=1)
    assert stored[c.pk].last_seen_at is None
    assert bulk_set(Customer, [], ["last_seen_at"]) == 0


def test_bulk_set_writes_nulls_and_several_fields():
    t = timezone.now().replace(microsecond=0)
    a = Customer.objects.create(display_name="A", last_seen_at=t)
    a.last_seen_at, a.updated_at = None, t - dt.timedelta(hours=2)
    bulk_set(Customer, [a], ["last_seen_at", "updated_at"])
    a.refresh_from_db()
    assert a.last_seen_at is None and a.updated_at == t - dt.timedelta(hours=2)


# --- Compiled: a SELECT compiled once, run with new values ------------------------------------

def _identities_query():
    return Identity.objects.select_related("customer").filter(AnyOf(F("value"), Param("values")))


IDENTITIES = Compiled(_identities_query)
SEEN_SINCE = Compiled(lambda: Customer.objects.filter(
    Q(last_seen_at__gte=Param("since", DateTimeField())) | Q(display_name="always"),
    AnyOf(F("pk"), Param("pks"))).order_by("pk").values_list("pk", "display_name", "last_seen_at"))


def _world():
    t = timezone.now().replace(microsecond=0)
    a = Customer.objects.create(display_name="A", last_seen_at=t)
    b = Customer.objects.create(display_name="B", last_seen_at=t - dt.timedelta(days=3))
    c = Customer.objects.create(display_name="always", last_seen_at=None)
    for customer, values in ((a, ["+6281100000001", "a@example.com"]), (b, ["+6281100000002"]), (c, ["it's \"c\""])):
        for value in values:
            Identity.objects.create(customer=customer, kind="email" if "@" in value else "phone", value=value)
    return t, a, b, c


def test_compiled_gives_what_the_queryset_gives_for_any_number_of_values():
    _world()
    for values in ([], ["+6281100000001"], ["+6281100000001", "a@example.com", "it's \"c\"", "nobody"],
                   ["+6281100000002"]):
        expected = list(Identity.objects.select_related("customer").filter(value__in=values))
        got = IDENTITIES.fetch(values=values)
        assert [(i.pk, i.kind, i.value, i.customer_id, i.first_seen_at) for i in got] == \
            [(i.pk, i.kind, i.value, i.customer_id, i.first_seen_at) for i in expected]
        # select_related: the customer came along, no query to reach it
        with CaptureQueriesContext(connection) as ctx:
            assert [i.customer.display_name for i in got] == [i.customer.display_name for i in expected]
        assert ctx.captured_queries == []
        assert all(not i._state.adding and i._state.db == "default" for i in got)


def test_compiled_prepares_scalar_params_and_gives_values_list_tuples():
    t, a, b, c = _world()
    rows = SEEN_SINCE.fetch(since=t - dt.timedelta(days=1), pks=[a.pk, b.pk, c.pk])
    assert rows == [(a.pk, "A", t), (c.pk, "always", None)]  # aware datetimes back, as the ORM gives
    assert SEEN_SINCE.fetch(since=t - dt.timedelta(days=4), pks=[b.pk]) == [(b.pk, "B", t - dt.timedelta(days=3))]


def test_compiled_compiles_once_per_connection_whatever_the_number_of_values():
    _world()
    calls = []
    real = SQLCompiler.as_sql

    def counting(self, *args, **kwargs):
        calls.append(self.query.model)
        return real(self, *args, **kwargs)

    query = Compiled(_identities_query)
    with mock.patch.object(SQLCompiler, "as_sql", counting), CaptureQueriesContext(connection) as ctx:
        for n in (1, 3, 2, 0):
            query.fetch(values=[f"+62811000000{i:02d}" for i in range(n)])
    assert calls == [Identity]
    assert len({q["sql"].split(" WHERE ")[0] for q in ctx.captured_queries}) == 1


@pytest.mark.django_db(transaction=True)  # autocommit outside the atomic block, as in production
def test_compiled_refuses_what_it_cannot_give():
    locked = Compiled(lambda: Customer.objects.select_for_update().filter(AnyOf(F("pk"), Param("pks"))))
    with pytest.raises(TransactionManagementError):
        locked.fetch(pks=[1])
    with transaction.atomic():
        assert locked.fetch(pks=[]) == []
    annotated = Compiled(lambda: Customer.objects.annotate(n=Count("identities")).filter(AnyOf(F("pk"), Param("pks"))))
    with pytest.raises(TypeError):
        annotated.fetch(pks=[1])
    with pytest.raises(TypeError):  # a plain list would make the statement depend on its length
        Compiled(lambda: Customer.objects.filter(AnyOf(F("pk"), [1]))).fetch()


def test_compiled_matches_nothing_for_an_integer_the_column_cannot_hold():
    """As the ORM's exact and `in` lookups do (a huge id in a URL is a 404, never a 500)."""
    _t, a, _b, _c = _world()
    by_pk = Compiled(lambda: Customer.objects.filter(pk=Param("pk", BigIntegerField())))
    assert by_pk.fetch(pk=2**70) == []
    assert [c.pk for c in by_pk.fetch(pk=a.pk)] == [a.pk]
    by_pks = Compiled(lambda: Customer.objects.filter(AnyOf(F("pk"), Param("pks"))))
    assert [c.pk for c in by_pks.fetch(pks=[a.pk, 2**70, -(2**70)])] == [a.pk]
