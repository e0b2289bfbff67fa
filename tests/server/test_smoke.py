async def test_rig_registers_the_cast(rig):
    from voisinage.models.resident import Resident

    assert await rig.count(Resident) == 4
    assert rig["alder"].village == "north"
