"""fer-demo: facial-expression recognition on FER2013 with timm ResNets and Grad-CAM."""
