from plugin.models import InboxDelivery, Order
from tests.conftest import services_of
from tests.support import count, metric, milestone_keys, order, post_order


def test_a_paid_order_counts_and_awards_the_first_order_milestone(app, client, shop):
    response = post_order(client, order(1))
    assert response.status_code == 200, response.get_json()
    services = services_of(app)
    assert count(services, Order, Order.counted.is_(True)) == 1
    assert count(services, InboxDelivery, InboxDelivery.status == "processed") == 1
    assert metric(services, "alice@example.com", "order_count") == 1
    assert milestone_keys(services, "alice@example.com") == [("order-1", 1)]
