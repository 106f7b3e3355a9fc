from channels.generic.websocket import AsyncJsonWebsocketConsumer


class PatronConsumer(AsyncJsonWebsocketConsumer):
    pass


class StaffConsumer(AsyncJsonWebsocketConsumer):
    pass
