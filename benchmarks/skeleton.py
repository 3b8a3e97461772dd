"""placeholder replaced below"""


def run_skeleton(rate: float, duration_s: float, quick: bool, json_path: object) -> int:
    raise NotImplementedError
