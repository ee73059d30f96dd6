# MMRazor's feature-distillation losses at their published settings, for
# configs that compare them with feature imitation on the same layers
# (configs/baselines/, configs/demo/methods/): use them as
# `loss=_base_.cwd_loss`, with `_delete_=True` where the base config sets
# another loss.
cwd_loss = dict(type='ChannelWiseDivergence', tau=1, loss_weight=10)
pkd_loss = dict(type='PKDLoss', loss_weight=6)
mgd_loss = dict(type='MGDLoss', alpha_mgd=0.00002)
mgd_connector = dict(type='MGDConnector', lambda_mgd=0.65)
