"""Dashboard URLs; every name here has a row in permissions.PERMISSIONS."""

from django.urls import path

from orders.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("orders/", views.order_list, name="order_list"),
    path("orders/<int:order_id>/", views.order_detail, name="order_detail"),
    path("orders/<int:order_id>/row/", views.order_row, name="order_row"),
    path("orders/<int:order_id>/cancel/", views.order_cancel, name="order_cancel"),
    path("orders/<int:order_id>/retry/", views.order_retry, name="order_retry"),
    path("orders/<int:order_id>/resend/", views.order_resend, name="order_resend"),
    path("vouchers/<int:voucher_id>/masked/", views.voucher_masked, name="voucher_masked"),
    path("vouchers/<int:voucher_id>/reveal/", views.voucher_reveal, name="voucher_reveal"),
    path("audit/", views.audit_log, name="audit_log"),
]
