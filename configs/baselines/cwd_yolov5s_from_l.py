# MMRazor's channel-wise distillation (CWD, Shu et al. 2021) on the same
# pair, neck levels and adapters as ../fgd_yolov5s_from_l.py, for a
# comparison on equal terms. Loss settings: mmrazor's CWD configs.
_base_ = '../fgd_yolov5s_from_l.py'

model = dict(
    distiller=dict(
        loss=dict(
            _delete_=True,
            type='ChannelWiseDivergence',
            tau=1,
            loss_weight=10),
        loss_prefix='loss_cwd',
        mask=None))
