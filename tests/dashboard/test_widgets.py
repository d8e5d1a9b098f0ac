"""The filter selects that the order list builds in Python (QuickSelect)."""

from __future__ import annotations

import pytest
from django import forms

from orders.dashboard.forms import OrderFilterForm
from orders.dashboard.widgets import QuickSelect
from tests.factories import ClientFactory, ProductFactory

pytestmark = pytest.mark.django_db


def test_same_html_as_the_stock_select_for_plain_choices():
    choices = [("", "Any"), ("a&b", "Tom & Jerry"), ("x", '<script>"x"</script>')]
    stock = forms.Select(choices=choices).render("pick", "a&b", attrs={"id": "id_pick"})
    quick = QuickSelect(choices=choices).render("pick", "a&b", attrs={"id": "id_pick"})
    assert quick.replace("\n", "") == stock.replace("\n", "").replace("  ", "")
    assert "<script>" not in quick
    assert '<option value="a&amp;b" selected>Tom &amp; Jerry</option>' in quick


def test_product_and_client_filters_list_every_row_escaped_with_the_choice_selected():
    wanted = ProductFactory(name="Orbit <Coffee> & Co")
    ProductFactory(name="Nebula Books")
    client = ClientFactory(name="Acme")
    form = OrderFilterForm({"product": str(wanted.pk), "client": str(client.pk)})
    assert form.is_valid(), form.errors
    product_html = str(form["product"])
    assert f'<option value="{wanted.pk}" selected>Orbit &lt;Coffee&gt; &amp; Co</option>' in (
        product_html
    )
    assert "Nebula Books" in product_html and '<option value="">Any</option>' in product_html
    assert f'<option value="{client.pk}" selected>Acme</option>' in str(form["client"])
    assert form.to_filters().product_id == wanted.pk
