"""Delivery of customer notifications by email, through the Dapr output binding
`customer-email` (bindings.smtp, resources/notification-email.yaml)."""

from app.delivery.email import (DeliveryFailed, InvalidDeliveryAddress, NoDeliveryAddress,
                                deliver_notification, delivery_key, notification_id_of)
from app.delivery.message import customer_email
from app.delivery.models import DeliverNotificationInput, DeliverNotificationOutput, DeliveryResult

__all__ = ["DeliverNotificationInput", "DeliverNotificationOutput", "DeliveryFailed", "DeliveryResult",
           "InvalidDeliveryAddress", "NoDeliveryAddress", "customer_email", "deliver_notification",
           "delivery_key", "notification_id_of"]
